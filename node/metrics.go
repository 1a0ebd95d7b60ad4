package node

// A node's Prometheus metrics. Each node has a registry of its own (not the
// global one), so that tests can run several nodes in one process. Most
// metrics read the node's atomic counters when scraped; the workers only
// count.

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/import/sink"
	"storm/meta"
)

// ops is the part of a node's metrics the worker's counters (rows,
// batches, claims) don't cover: what /metrics, the heartbeat and the log's
// phase attribute read.
type ops struct {
	bytes     atomic.Int64 // source bytes of the rows this node committed
	takeovers atomic.Int64 // claims of a shard a previous owner had begun
	phase     atomic.Pointer[string]
	lease     atomic.Int64 // the current session's lease; 0 between sessions
	addr      atomic.Pointer[string]
	etcdRTT   atomic.Pointer[prometheus.HistogramVec]
	target    atomic.Pointer[sink.Target]
	// shards tells where the import's shards stand as this node's view
	// sees them (storm_shards): the live view during the import, its last
	// counts after it; nil before.
	shards atomic.Pointer[func() counts]
	steps  stepsInWork
	// tables, while the node runs table steps, says each table's state as
	// its views see it (runSteps).
	tables atomic.Pointer[func() map[string]string]
}

// Phases a node reports (storm_phase, the heartbeat, the log's phase
// attribute): verify covers verify-plan, reading ranges back and verify.
const (
	nodePhaseJoin     = "join"
	nodePhaseFinished = "finished"
)

var nodePhases = []string{nodePhaseJoin, string(meta.PhasePlan), string(meta.PhasePrepare), string(meta.PhaseImport),
	string(meta.PhaseVerify), string(meta.PhaseFinalize), nodePhaseFinished}

// setPhase records what the node does now.
func (n *Node) setPhase(p meta.Phase) {
	s := string(p)
	switch {
	case p == meta.PhaseVerifyPlan:
		s = string(meta.PhaseVerify)
	case strings.HasPrefix(s, string(meta.PhasePlan)+"-"): // plan-source/<id>
		s = string(meta.PhasePlan)
	}
	if cur := n.metrics.phase.Load(); cur != nil && *cur == s {
		return
	}
	n.metrics.phase.Store(&s)
}

// currentPhase is what setPhase last said; "" before the first session.
func (n *Node) currentPhase() string {
	if p := n.metrics.phase.Load(); p != nil {
		return *p
	}
	return ""
}

// observeEtcd records the round trip of an etcd request (op: claim,
// heartbeat, lease_ttl).
func (m *metrics) observeEtcd(op string, d time.Duration) {
	if h := m.etcdRTT.Load(); h != nil {
		h.WithLabelValues(op).Observe(d.Seconds())
	}
}

// acquired counts a takeover when the checkpoint of a shard just claimed
// shows a previous owner's progress.
func (m *metrics) acquired(cp sink.Checkpoint) {
	if cp.NextOffset > 0 || cp.Rows > 0 || cp.Finished {
		m.takeovers.Add(1)
	}
}

// newRegistry builds the node's registry.
func (n *Node) newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	m := &n.metrics
	counter := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, v)
	}
	load := func(a *atomic.Int64) func() float64 { return func() float64 { return float64(a.Load()) } }
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "storm_node_info", Help: "Always 1: the node's job and id.",
			ConstLabels: prometheus.Labels{"storm_job": n.job.ID, "storm_node": n.cfg.NodeID}}, func() float64 { return 1 }),
		counter("storm_rows_written_total", "Rows this node committed to the target.", load(&m.rows)),
		counter("storm_bytes_written_total", "Source bytes of the rows this node committed.", load(&m.bytes)),
		counter("storm_batches_total", "Batches (database transactions) this node committed.", load(&m.batches)),
		counter("storm_claims_total", "Shards this node claimed.", load(&m.claims)),
		counter("storm_takeovers_total", "Claims of a shard whose checkpoint had a previous owner's progress.", load(&m.takeovers)),
		counter("storm_target_retries_total", "Target statements retried after a transient error (connection lost, deadlock, ...).",
			func() float64 {
				if t := m.target.Load(); t != nil {
					return float64(t.Retries())
				}
				return 0
			}),
		leaseCollector{n: n,
			remaining: prometheus.NewDesc("storm_lease_remaining_seconds", "Seconds left on the node's etcd session lease; -1 without one.", nil, nil),
			granted:   prometheus.NewDesc("storm_lease_ttl_seconds", "The TTL the node's etcd session lease was granted with.", nil, nil)},
		stepCollector{m: m,
			now: prometheus.NewDesc("storm_table_step", "1 for each table step this node runs now (step: claimed, indexes, check, analyze).",
				[]string{"table", "step"}, nil),
			took: prometheus.NewDesc("storm_table_step_seconds", "How long each table step this node finished took.",
				[]string{"table", "step"}, nil),
			state: prometheus.NewDesc("storm_table_state", "1 for each table's state as this node sees it (importing, waiting, "+
				"indexing, checking, analyzing, verify-plan, steps: on another node, verifying: its steps done, failed).",
				[]string{"table", "state"}, nil)},
	)
	for _, p := range nodePhases {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "storm_phase",
			Help:        "1 for the phase the node is in (join, plan, prepare, import, verify, finalize, finished), 0 for the others.",
			ConstLabels: prometheus.Labels{"phase": p}}, func() float64 {
			if n.currentPhase() == p {
				return 1
			}
			return 0
		}))
	}
	// Every node reports the whole job's shards: a dashboard takes the max
	// over nodes, and an alert sees a failed shard even if its node died.
	for _, st := range []struct {
		state string
		of    func(counts) int
	}{
		{"pending", func(c counts) int { return c.Pending }},
		{"in_work", func(c counts) int { return c.Claimed }},
		{"done", func(c counts) int { return c.Done }},
		{"failed", func(c counts) int { return c.Failed }},
	} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "storm_shards",
			Help:        "The job's import shards by state (pending, in_work, done, failed) as this node sees them; 0 before its import phase.",
			ConstLabels: prometheus.Labels{"state": st.state}}, func() float64 {
			if f := m.shards.Load(); f != nil {
				return float64(st.of((*f)()))
			}
			return 0
		}))
	}
	rtt := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "storm_etcd_request_duration_seconds",
		Help:    "Round trip of the node's etcd requests, by op (claim: the claim Txn; heartbeat; lease_ttl).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"op"})
	reg.MustRegister(rtt)
	m.etcdRTT.Store(rtt)
	return reg
}

// leaseCollector asks etcd for the session lease's time to live on scrape.
type leaseCollector struct {
	n                  *Node
	remaining, granted *prometheus.Desc
}

func (c leaseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.remaining
	ch <- c.granted
}

func (c leaseCollector) Collect(ch chan<- prometheus.Metric) {
	remaining, granted := -1.0, float64(c.n.cfg.LeaseTTL)
	if id := c.n.metrics.lease.Load(); id != 0 && c.n.cli != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		start := time.Now()
		resp, err := c.n.cli.TimeToLive(ctx, clientv3.LeaseID(id))
		cancel()
		c.n.metrics.observeEtcd("lease_ttl", time.Since(start))
		if err == nil && resp.TTL >= 0 {
			remaining, granted = float64(resp.TTL), float64(resp.GrantedTTL)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.remaining, prometheus.GaugeValue, remaining)
	ch <- prometheus.MustNewConstMetric(c.granted, prometheus.GaugeValue, granted)
}

// stepsInWork is what this node's table steps do now (table -> step),
// and how long the steps it finished took (table -> step -> seconds).
type stepsInWork struct {
	mu   sync.Mutex
	now  map[string]string
	took map[string]map[string]float64
}

func (m *metrics) stepDone(table, step string, secs float64) {
	m.steps.mu.Lock()
	defer m.steps.mu.Unlock()
	if m.steps.took == nil {
		m.steps.took = map[string]map[string]float64{}
	}
	if m.steps.took[table] == nil {
		m.steps.took[table] = map[string]float64{}
	}
	m.steps.took[table][step] = secs
}

// stepCollector shows this node's table steps: the one each table is in
// now, and how long the finished ones took; and each table's state as the
// node's views see it.
type stepCollector struct {
	m                *metrics
	now, took, state *prometheus.Desc
}

func (c stepCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.now
	ch <- c.took
	ch <- c.state
}

func (c stepCollector) Collect(ch chan<- prometheus.Metric) {
	if f := c.m.tables.Load(); f != nil {
		for table, state := range (*f)() {
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, 1, table, state)
		}
	}
	c.m.steps.mu.Lock()
	defer c.m.steps.mu.Unlock()
	for table, step := range c.m.steps.now {
		ch <- prometheus.MustNewConstMetric(c.now, prometheus.GaugeValue, 1, table, step)
	}
	for table, steps := range c.m.steps.took {
		for step, secs := range steps {
			ch <- prometheus.MustNewConstMetric(c.took, prometheus.GaugeValue, secs, table, step)
		}
	}
}

func (m *metrics) stepStarted(table string) { m.stepPhase(table, "claimed") }

func (m *metrics) stepPhase(table, step string) {
	m.steps.mu.Lock()
	defer m.steps.mu.Unlock()
	if m.steps.now == nil {
		m.steps.now = map[string]string{}
	}
	m.steps.now[table] = step
}

func (m *metrics) stepEnded(table string) {
	m.steps.mu.Lock()
	defer m.steps.mu.Unlock()
	delete(m.steps.now, table)
}
