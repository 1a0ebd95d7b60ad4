package jobctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/meta"
)

// StatusVersion is the version of the Status document (`storm status
// --json`, a node's /status). Fields are only ever added to it.
const StatusVersion = 1

// RateWindow is how far back "throughput now" looks (at most: a younger
// job's window begins with it): the rows and bytes that finished shards and
// the progress records of shards in work account for within it, each spread
// evenly over its shard's own span of time.
const RateWindow = 30 * time.Second

// Job states of a Status, for machines; Phase says it for people.
const (
	StateNotStarted = "not-started" // no spec, no node
	StateIdle       = "idle"        // a spec, no live node, no barrier: start nodes
	StateRunning    = "running"
)

// Status is a job's state as etcd shows it, for `storm status`, `storm job`
// and a node's /status.
type Status struct {
	Version int                         `json:"version"`
	Job     string                      `json:"job"`
	State   string                      `json:"state"` // not-started, idle, running, or the barrier's status
	Phase   string                      `json:"phase"`
	Phases  map[string]meta.PhaseMarker `json:"phases"`
	Shards  int                         `json:"shards"`
	Done    int                         `json:"done"`
	Claimed int                         `json:"claimed"`
	Failed  int                         `json:"failed"`
	Pending int                         `json:"pending"`
	Rows    int64                       `json:"rows"`
	Bytes   int64                       `json:"bytes"`
	Total   int64                       `json:"total_bytes"`
	Percent float64                     `json:"percent"` // of total_bytes
	Nodes   []NodeState                 `json:"nodes"`
	Owners  map[string]int              `json:"shards_in_work_by_node"`
	Barrier *meta.Barrier               `json:"barrier,omitempty"`
	// Sources are the job's declared sources and whether each is planned:
	// a source only its own host can read waits for that host.
	Sources []SourceState `json:"sources,omitempty"`
	// ExitCode is what nodes and `storm wait` exit with, once the barrier
	// exists.
	ExitCode     *int                `json:"exit_code,omitempty"`
	Cancel       *meta.CancelRequest `json:"cancel,omitempty"`
	FailedShards []meta.Failed       `json:"failed_shards,omitempty"` // the first 20, by shard id
	CreatedAt    time.Time           `json:"created_at,omitzero"`     // the spec's: when the job began
	ReadAt       time.Time           `json:"read_at"`
	Revision     int64               `json:"revision"` // the etcd revision read
	Elapsed      float64             `json:"elapsed_seconds"`
	Throughput   Throughput          `json:"throughput"`
	// ETA is the import's time left at the current rate (the average one
	// while nothing moved recently); null when unknown, 0 once every shard
	// is done.
	ETA *float64 `json:"eta_seconds"`
	// Tables are each table's state, by db.table.
	Tables []TableState `json:"tables,omitempty"`
}

// Table states of a TableState.
const (
	TableImporting = "importing" // shards left
	TableWaiting   = "waiting"   // every shard done, its steps not begun
	TableIndexing  = "indexing"  // building its deferred indexes
	TableChecking  = "checking"  // comparing its indexes with its schema's
	TableAnalyzing = "analyzing" // ANALYZE TABLE
	TableVerifying = "verifying" // its steps done; the digest check runs
	TableDone      = "done"
	TableFailed    = "failed"
)

// StepState is the state of a table while a node does step (a meta.Step*
// name); ok is false for a step that has none of its own.
func StepState(step string) (state string, ok bool) {
	switch step {
	case meta.StepIndexes:
		return TableIndexing, true
	case meta.StepCheck:
		return TableChecking, true
	case meta.StepAnalyze:
		return TableAnalyzing, true
	case meta.StepAdminChecksum:
		return TableVerifying, true
	}
	return "", false
}

// TableState is one table of the job.
type TableState struct {
	DB         string `json:"db"`
	Table      string `json:"table"`
	State      string `json:"state"`
	Shards     int    `json:"shards"`
	ShardsDone int    `json:"shards_done"`
	// Node runs its steps now; Steps are those finished, with their times.
	Node  string            `json:"node,omitempty"`
	Steps []meta.StepResult `json:"steps,omitempty"`
	Error string            `json:"error,omitempty"`
}

// SourceState is a declared source of the job.
type SourceState struct {
	ID      string `json:"id"`
	Node    string `json:"node,omitempty"` // only this node can read it
	Planned bool   `json:"planned"`
	Error   string `json:"error,omitempty"` // of its plan
	// NodeAlive: Node is "" or has a live node record.
	NodeAlive bool `json:"node_alive"`
	// Pending are the source's shards nobody works on yet. A node-local
	// source's wait for its node: nobody else can read them.
	Pending int `json:"pending"`
	// Skipped are the files of the source its plan did not load
	// (relative to its directory), as the plan's summary lists them.
	Skipped []string `json:"skipped,omitempty"`
}

// waiting lists the sources not planned yet.
func (st *Status) waiting() []SourceState {
	var out []SourceState
	for _, s := range st.Sources {
		if !s.Planned {
			out = append(out, s)
		}
	}
	return out
}

// Throughput is the job's write rate now and since it began.
type Throughput struct {
	Now           Rate    `json:"now"`
	Average       Rate    `json:"average"`
	WindowSeconds float64 `json:"window_seconds"` // of Now
}

// Rate is rows and source bytes per second.
type Rate struct {
	RowsPerSec  float64 `json:"rows_per_sec"`
	BytesPerSec float64 `json:"bytes_per_sec"`
}

// NodeState is a live node as `storm status` shows it.
type NodeState struct {
	meta.NodeRecord
	InWork     int   `json:"shards_in_work"`
	ShardsDone int   `json:"shards_done"` // shards this node finished, in this job
	RowsDone   int64 `json:"rows_done"`
	Rate       Rate  `json:"rate"` // now, over the same window as the job's
	// HeartbeatAge is how long ago the node last refreshed its record
	// (its start, before its first heartbeat).
	HeartbeatAge float64 `json:"heartbeat_age_seconds"`
}

// tracker holds a job's records, decoded, as one read and then a watch
// deliver them; status() sums them up.
type tracker struct {
	job      meta.Job
	rev      int64
	spec     *meta.SpecRecord
	shards   map[string]int64  // bytes
	tableOf  map[string]string // shard -> db.table
	steps    map[string]meta.TableStep
	sclaims  map[string]meta.Claim
	sprog    map[string]meta.StepProgress
	sdone    map[string]meta.StepsDone
	sfailed  map[string]meta.Failed
	done     map[string]meta.Done
	progress map[string]meta.Progress
	claims   map[string]meta.Claim
	failed   map[string]meta.Failed
	phases   map[string]meta.PhaseMarker
	nodes    map[string]meta.NodeRecord
	cancel   *meta.CancelRequest
	barrier  *meta.Barrier
	err      error // an undecodable barrier: the one record status can't do without
}

func newTracker(job meta.Job) *tracker {
	return &tracker{job: job, shards: map[string]int64{}, tableOf: map[string]string{}, steps: map[string]meta.TableStep{},
		sclaims: map[string]meta.Claim{}, sprog: map[string]meta.StepProgress{}, sdone: map[string]meta.StepsDone{},
		sfailed: map[string]meta.Failed{}, done: map[string]meta.Done{},
		progress: map[string]meta.Progress{}, claims: map[string]meta.Claim{}, failed: map[string]meta.Failed{},
		phases: map[string]meta.PhaseMarker{}, nodes: map[string]meta.NodeRecord{}}
}

// apply records a put (val != nil) or a delete (val == nil) of key.
func (t *tracker) apply(key string, val []byte) {
	k, ok := t.job.Parse(key)
	if !ok || k.Job != t.job.ID {
		return
	}
	del := val == nil
	switch k.Kind {
	case meta.KindSpec:
		t.spec = nil
		var s meta.SpecRecord
		if !del && meta.Decode(key, val, &s) == nil {
			t.spec = &s
		}
	case meta.KindShards:
		delete(t.shards, k.Name)
		var s meta.Shard
		if !del && meta.Decode(key, val, &s) == nil {
			t.shards[k.Name] = s.Bytes
			t.tableOf[k.Name] = s.DB + "." + s.Table
		}
	case meta.KindSteps:
		putOrDelete(t.steps, key, k.Name, val)
	case meta.KindStepClaims:
		putOrDelete(t.sclaims, key, k.Name, val)
	case meta.KindStepProgress:
		putOrDelete(t.sprog, key, k.Name, val)
	case meta.KindStepsDone:
		putOrDelete(t.sdone, key, k.Name, val)
	case meta.KindStepsFailed:
		putOrDelete(t.sfailed, key, k.Name, val)
	case meta.KindDone:
		putOrDelete(t.done, key, k.Name, val)
	case meta.KindProgress:
		putOrDelete(t.progress, key, k.Name, val)
	case meta.KindClaims:
		putOrDelete(t.claims, key, k.Name, val)
	case meta.KindFailed:
		putOrDelete(t.failed, key, k.Name, val)
	case meta.KindPhase:
		putOrDelete(t.phases, key, k.Name, val)
	case meta.KindNodes:
		putOrDelete(t.nodes, key, k.Name, val)
	case meta.KindCancel:
		t.cancel = nil
		var c meta.CancelRequest
		if !del && meta.Decode(key, val, &c) == nil {
			t.cancel = &c
		}
	case meta.KindBarrier:
		t.barrier, t.err = nil, nil
		if !del {
			var b meta.Barrier
			if t.err = meta.Decode(key, val, &b); t.err == nil {
				t.barrier = &b
			}
		}
	}
}

// putOrDelete keeps a record under name; an undecodable one counts with
// its zero value, so that counts stay right.
func putOrDelete[T any](m map[string]T, key, name string, val []byte) {
	if val == nil {
		delete(m, name)
		return
	}
	var v T
	_ = meta.Decode(key, val, &v)
	m[name] = v
}

// load replaces the tracker's records with one range read of the job.
func (t *tracker) load(ctx context.Context, cli *clientv3.Client) error {
	resp, err := cli.Get(ctx, t.job.Root(), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("read job %s: %w", t.job.ID, err)
	}
	*t = *newTracker(t.job)
	t.rev = resp.Header.Revision
	for _, kv := range resp.Kvs {
		t.apply(string(kv.Key), kv.Value)
	}
	return nil
}

// ReadStatus reads a job's keys in one range read.
func ReadStatus(ctx context.Context, cli *clientv3.Client, job meta.Job) (*Status, error) {
	t := newTracker(job)
	if err := t.load(ctx, cli); err != nil {
		return nil, err
	}
	return t.status(time.Now())
}

// WatchStatus calls fn with the job's status at once, then at most every
// interval while the job changes, and at once when the barrier appears; it
// returns when fn returns false, or ctx ends. It reads the job once and then
// follows a watch, so a large job costs one read, not one per interval.
//
// etcd going away for a while (its quorum lost, a member restarted, a
// watch cancelled) does not end it: it reads the job again and goes on,
// with backoff, and gives up only when no read has worked for
// WatchGiveUp.
func WatchStatus(ctx context.Context, cli *clientv3.Client, job meta.Job, interval time.Duration, fn func(*Status) bool) error {
	interval = max(interval, 100*time.Millisecond)
	var failingSince time.Time
	backoff := 200 * time.Millisecond
	for {
		t := newTracker(job)
		err := t.load(ctx, cli)
		if err == nil {
			failingSince, backoff = time.Time{}, 200*time.Millisecond
			err = t.follow(ctx, cli, interval, fn)
		}
		if errors.Is(err, errStopWatch) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			continue // compacted past our revision: read the job again
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		}
		if time.Since(failingSince) >= WatchGiveUp {
			return fmt.Errorf("etcd unreachable for %s: %w", WatchGiveUp, err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// WatchGiveUp is how long WatchStatus keeps trying while etcd does not
// answer.
var WatchGiveUp = 2 * time.Minute

var errStopWatch = errors.New("stop watching")

func (t *tracker) follow(ctx context.Context, cli *clientv3.Client, interval time.Duration, fn func(*Status) bool) error {
	emit := func() error {
		st, err := t.status(time.Now())
		if err != nil {
			return err
		}
		if !fn(st) {
			return errStopWatch
		}
		return nil
	}
	if err := emit(); err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := cli.Watch(wctx, t.job.Root(), clientv3.WithPrefix(), clientv3.WithRev(t.rev+1))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-wch:
			if !ok {
				return fmt.Errorf("watch of job %s ended", t.job.ID)
			}
			if err := resp.Err(); err != nil {
				return err
			}
			barrier := false
			for _, ev := range resp.Events {
				var val []byte
				if ev.Type == clientv3.EventTypePut {
					val = ev.Kv.Value
				}
				t.apply(string(ev.Kv.Key), val)
				if k, ok := t.job.Parse(string(ev.Kv.Key)); ok && k.Kind == meta.KindBarrier {
					barrier = true
				}
			}
			if len(resp.Events) > 0 {
				t.rev = resp.Header.Revision
			}
			if barrier {
				if err := emit(); err != nil {
					return err
				}
			}
		case <-tick.C:
			// Rates and ages move with time even when no key does.
			if err := emit(); err != nil {
				return err
			}
		}
	}
}

// status sums the tracker's records up as of now.
func (t *tracker) status(now time.Time) (*Status, error) {
	if t.err != nil {
		return nil, t.err
	}
	st := &Status{Version: StatusVersion, Job: t.job.ID, Phases: map[string]meta.PhaseMarker{}, Owners: map[string]int{},
		ReadAt: now.UTC(), Revision: t.rev, Barrier: t.barrier, Cancel: t.cancel,
		Throughput: Throughput{WindowSeconds: RateWindow.Seconds()}}
	for name, m := range t.phases {
		st.Phases[name] = m
	}
	for _, b := range t.shards {
		st.Total += b
	}
	st.Shards = len(t.shards)
	perNode := map[string]*NodeState{}
	nodeOf := func(id string) *NodeState {
		if perNode[id] == nil {
			perNode[id] = &NodeState{}
		}
		return perNode[id]
	}
	// The window of "now": the last RateWindow, or since the job began.
	from := now.Add(-RateWindow)
	if t.spec != nil && t.spec.CreatedAt.After(from) {
		from = t.spec.CreatedAt
	}
	w := max(now.Sub(from).Seconds(), 0.1)
	st.Throughput.WindowSeconds = w
	var win Rate
	for _, d := range t.done {
		st.Rows += d.Rows
		st.Bytes += d.Bytes
		ns := nodeOf(d.Node)
		ns.ShardsDone++
		ns.RowsDone += d.Rows
		if f := overlap(d.At.Add(-time.Duration(d.Seconds*float64(time.Second))), d.At, from, now); f > 0 {
			r := Rate{RowsPerSec: f * float64(d.Rows), BytesPerSec: f * float64(d.Bytes)}
			win.add(r)
			ns.Rate.add(r)
		}
	}
	for id, c := range t.claims {
		if _, done := t.done[id]; done {
			continue
		}
		st.Claimed++
		st.Owners[c.Node]++
	}
	for id, p := range t.progress {
		if _, done := t.done[id]; done {
			continue
		}
		st.Rows += p.Rows
		st.Bytes += p.Bytes
		c, claimed := t.claims[id]
		if !claimed || c.Node != p.Node {
			continue
		}
		if f := overlap(c.At, p.At, from, now); f > 0 {
			r := Rate{RowsPerSec: f * float64(p.Rows), BytesPerSec: f * float64(p.Bytes)}
			win.add(r)
			nodeOf(p.Node).Rate.add(r)
		}
	}
	st.Throughput.Now = Rate{RowsPerSec: win.RowsPerSec / w, BytesPerSec: win.BytesPerSec / w}
	st.Failed = len(t.failed)
	for _, f := range t.failed {
		st.FailedShards = append(st.FailedShards, f)
	}
	sort.Slice(st.FailedShards, func(i, j int) bool { return st.FailedShards[i].Shard < st.FailedShards[j].Shard })
	st.FailedShards = st.FailedShards[:min(len(st.FailedShards), 20)]
	failedShards := 0
	for id := range t.failed {
		if _, ok := t.shards[id]; ok {
			failedShards++
		}
	}
	st.Done = len(t.done)
	st.Pending = max(0, st.Shards-st.Done-st.Claimed-failedShards)
	if st.Total > 0 {
		st.Percent = 100 * float64(min(st.Bytes, st.Total)) / float64(st.Total)
	}

	for id, rec := range t.nodes {
		ns := NodeState{NodeRecord: rec}
		if ns.ID == "" {
			ns.ID = id
		}
		if agg := perNode[ns.ID]; agg != nil {
			ns.ShardsDone, ns.RowsDone = agg.ShardsDone, agg.RowsDone
			ns.Rate = Rate{RowsPerSec: agg.Rate.RowsPerSec / w, BytesPerSec: agg.Rate.BytesPerSec / w}
		}
		ns.InWork = st.Owners[ns.ID]
		beat := rec.Heartbeat
		if beat.IsZero() {
			beat = rec.Started
		}
		if !beat.IsZero() {
			ns.HeartbeatAge = max(0, now.Sub(beat).Seconds())
		}
		st.Nodes = append(st.Nodes, ns)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].ID < st.Nodes[j].ID })

	if t.spec != nil {
		for _, src := range t.spec.Source.Sources() {
			m, planned := t.phases[string(meta.PlanSource(src.ID))]
			_, alive := t.nodes[src.Node]
			ss := SourceState{ID: src.ID, Node: src.Node, Planned: planned, Error: m.Error, NodeAlive: src.Node == "" || alive}
			var ps meta.PlanSummary
			if m.Summary != nil && meta.Decode("plan summary", m.Summary, &ps) == nil {
				ss.Skipped = ps.Skipped
			}
			for id := range t.shards {
				_, done := t.done[id]
				_, failed := t.failed[id]
				_, claimed := t.claims[id]
				// Shard ids start with their source's id, which has no '.'.
				if !done && !failed && !claimed && strings.HasPrefix(id, src.ID+".") {
					ss.Pending++
				}
			}
			st.Sources = append(st.Sources, ss)
		}
		st.CreatedAt = t.spec.CreatedAt
		st.Elapsed = max(0, now.Sub(t.spec.CreatedAt).Seconds())
	}
	if b := t.barrier; b != nil {
		st.Elapsed = b.Seconds
		code := b.ExitCode()
		st.ExitCode = &code
		st.Throughput.Now = Rate{} // nothing is written any more
	}
	if st.Elapsed > 0 {
		st.Throughput.Average = Rate{RowsPerSec: float64(st.Rows) / st.Elapsed, BytesPerSec: float64(st.Bytes) / st.Elapsed}
	}
	st.Phase = currentPhase(st)
	switch {
	case t.barrier != nil:
		st.State = string(t.barrier.Status)
	case len(t.nodes) > 0:
		st.State = StateRunning
	case t.spec != nil:
		st.State = StateIdle
	default:
		st.State = StateNotStarted
	}
	st.ETA = eta(st)
	st.Tables = t.tables()
	return st, nil
}

// tables sums each table's state from its shards and its steps.
func (t *tracker) tables() []TableState {
	by := map[string]*TableState{}
	get := func(id string) *TableState {
		ts := by[id]
		if ts == nil {
			db, table, _ := strings.Cut(id, ".")
			ts = &TableState{DB: db, Table: table}
			by[id] = ts
		}
		return ts
	}
	failedTables := map[string]string{}
	for id, table := range t.tableOf {
		ts := get(table)
		ts.Shards++
		if _, ok := t.done[id]; ok {
			ts.ShardsDone++
		}
		if f, ok := t.failed[id]; ok && failedTables[table] == "" {
			failedTables[table] = "shard " + id + ": " + f.Reason
		}
	}
	for id, s := range t.steps {
		if _, ok := by[id]; !ok {
			ts := get(id)
			ts.DB, ts.Table = s.DB, s.Table
		}
	}
	verifyDone := t.barrier != nil
	if _, ok := t.phases[string(meta.PhaseVerify)]; ok {
		verifyDone = true
	}
	verifyOff := t.spec != nil && t.spec.Verify.Mode == meta.VerifyOff
	var out []TableState
	for id, ts := range by {
		switch d, done := t.sdone[id]; {
		case failedTables[id] != "":
			ts.State, ts.Error = TableFailed, failedTables[id]
		case t.sfailed[id].Reason != "":
			ts.State, ts.Error = TableFailed, t.sfailed[id].Reason
		case done:
			ts.Steps = d.Steps
			ts.State = TableVerifying
			if verifyDone || verifyOff {
				ts.State = TableDone
			}
		case ts.ShardsDone < ts.Shards:
			ts.State = TableImporting
		case t.sclaims[id].Node != "":
			ts.Node = t.sclaims[id].Node
			ts.State = TableWaiting
			if p, ok := t.sprog[id]; ok && p.Node == ts.Node {
				if state, ok := StepState(p.Step); ok {
					ts.State = state
				}
			}
		case len(t.steps) == 0 && ts.Shards > 0 && verifyDone:
			ts.State = TableDone // a job from before table steps
		case len(t.steps) == 0 && ts.Shards > 0:
			ts.State = TableVerifying
		default:
			ts.State = TableWaiting
		}
		out = append(out, *ts)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DB+"."+out[i].Table < out[j].DB+"."+out[j].Table })
	return out
}

func eta(st *Status) *float64 {
	_, planned := st.Phases[string(meta.PhasePlan)]
	if st.Barrier != nil || !planned || st.Total == 0 || len(st.waiting()) > 0 {
		return nil // a source still to plan adds work no one can size yet
	}
	if st.Done+st.Failed >= st.Shards {
		zero := 0.0
		return &zero
	}
	rate := st.Throughput.Now.BytesPerSec
	if rate <= 0 {
		rate = st.Throughput.Average.BytesPerSec
	}
	if rate <= 0 {
		return nil
	}
	s := float64(max(st.Total-st.Bytes, 0)) / rate
	return &s
}

// overlap is the fraction of [a, b] that lies within [from, to]; a span of
// no length counts whole if it lies within.
func overlap(a, b, from, to time.Time) float64 {
	if b.Before(a) {
		a, b = b, a
	}
	if !b.After(a) {
		if !a.Before(from) && !a.After(to) {
			return 1
		}
		return 0
	}
	lo, hi := a, b
	if from.After(lo) {
		lo = from
	}
	if to.Before(hi) {
		hi = to
	}
	if !hi.After(lo) {
		return 0
	}
	return float64(hi.Sub(lo)) / float64(b.Sub(a))
}

func (r *Rate) add(o Rate) {
	r.RowsPerSec += o.RowsPerSec
	r.BytesPerSec += o.BytesPerSec
}

func currentPhase(st *Status) string {
	if st.Barrier != nil {
		return "finished (" + string(st.Barrier.Status) + ")"
	}
	for _, p := range []meta.Phase{meta.PhaseFinalize, meta.PhaseVerify} {
		if _, ok := st.Phases[string(p)]; ok {
			return "finalize"
		}
	}
	if _, ok := st.Phases[string(meta.PhaseVerifyPlan)]; ok {
		return "verify"
	}
	if _, ok := st.Phases[string(meta.PhasePlan)]; ok {
		return "import"
	}
	if len(st.Nodes) == 0 {
		return "not started"
	}
	return "plan"
}

// Print writes the status for a person.
func (st *Status) Print(w io.Writer) {
	fmt.Fprintf(w, "job %s: %s\n", st.Job, st.Phase)
	fmt.Fprintf(w, "shards: %d done, %d in work, %d pending, %d failed of %d\n", st.Done, st.Claimed, st.Pending, st.Failed, st.Shards)
	fmt.Fprintf(w, "rows: %d   bytes: %s of %s (%.1f%%)\n", st.Rows, HumanBytes(st.Bytes), HumanBytes(st.Total), st.Percent)
	if st.Elapsed > 0 {
		line := fmt.Sprintf("throughput: average %s over %s", st.Throughput.Average, HumanSeconds(st.Elapsed))
		if st.Barrier == nil {
			line = fmt.Sprintf("throughput: now %s, average %s over %s", st.Throughput.Now, st.Throughput.Average, HumanSeconds(st.Elapsed))
		}
		if st.ETA != nil {
			line += "; import eta " + HumanSeconds(*st.ETA)
		}
		fmt.Fprintln(w, line)
	}
	var phases []string
	order := []meta.Phase{meta.PhasePlan}
	var others []string // plan-source/<id>, and whatever comes
	for name := range st.Phases {
		switch meta.Phase(name) {
		case meta.PhasePlan, meta.PhasePrepare, meta.PhaseVerifyPlan, meta.PhaseVerify, meta.PhaseFinalize:
		default:
			others = append(others, name)
		}
	}
	sort.Strings(others)
	for _, name := range others {
		order = append(order, meta.Phase(name))
	}
	order = append(order, meta.PhasePrepare, meta.PhaseVerifyPlan, meta.PhaseVerify, meta.PhaseFinalize)
	for _, p := range order {
		if m, ok := st.Phases[string(p)]; ok {
			s := fmt.Sprintf("%s by %s", p, m.By)
			if m.Error != "" {
				s += " (error: " + m.Error + ")"
			}
			phases = append(phases, s)
		}
	}
	if len(phases) > 0 {
		fmt.Fprintf(w, "phases done: %s\n", strings.Join(phases, ", "))
	}
	for _, f := range st.FailedShards {
		loc := f.File
		if f.Line > 0 {
			loc += fmt.Sprintf(":%d", f.Line)
		}
		fmt.Fprintf(w, "failed shard %s (%s): %s\n", f.Shard, loc, f.Reason)
	}
	for _, s := range st.Sources {
		if st.Barrier != nil {
			break
		}
		switch {
		case !s.Planned && s.Node == "":
			fmt.Fprintf(w, "source %s waits to be planned by any node\n", s.ID)
		case !s.Planned && s.NodeAlive:
			fmt.Fprintf(w, "source %s waits for node %s, which is running (planning it)\n", s.ID, s.Node)
		case !s.Planned:
			fmt.Fprintf(w, "source %s waits for node %s, not running: only it can read the source\n", s.ID, s.Node)
		case s.Node != "" && !s.NodeAlive && s.Pending > 0:
			fmt.Fprintf(w, "source %s: %d shard(s) wait for node %s to come back: only it can read them\n", s.ID, s.Pending, s.Node)
		}
	}
	for _, s := range st.Sources {
		if len(s.Skipped) > 0 {
			fmt.Fprintf(w, "source %s: %d file(s) skipped: %s\n", s.ID, len(s.Skipped), strings.Join(s.Skipped, ", "))
		}
	}
	if c := st.Cancel; c != nil && st.Barrier == nil {
		fmt.Fprintf(w, "cancel requested by %s at %s %s\n", c.By, c.At.Format(time.RFC3339), c.Reason)
	}
	// Every table of a small job; of a big one those not done.
	done := 0
	for _, ts := range st.Tables {
		if ts.State == TableDone {
			done++
		}
	}
	if len(st.Tables) > 0 {
		fmt.Fprintf(w, "tables: %d of %d done\n", done, len(st.Tables))
	}
	for _, ts := range st.Tables {
		if len(st.Tables) <= 30 || ts.State != TableDone {
			fmt.Fprintf(w, "  %s\n", ts.line())
		}
	}
	fmt.Fprintf(w, "nodes alive: %d\n", len(st.Nodes))
	for _, n := range st.Nodes {
		fmt.Fprintf(w, "  %s\n", n.line())
	}
	if b := st.Barrier; b != nil {
		fmt.Fprintf(w, "barrier: %s, %d rows, %d shards, %.1fs, nodes %s\n", b.Status, b.Rows, b.Shards, b.Seconds, strings.Join(b.Nodes, ","))
		if b.Reason != "" {
			fmt.Fprintf(w, "reason: %s\n", b.Reason)
		}
		if len(b.NoData) > 0 {
			fmt.Fprintf(w, "tables with no data file (created, left empty): %s\n", strings.Join(b.NoData, ", "))
		}
	}
}

// line describes a table on one line.
func (ts TableState) line() string {
	s := fmt.Sprintf("table %s.%s: %s", ts.DB, ts.Table, ts.State)
	if ts.State == TableImporting {
		s += fmt.Sprintf(" (%d of %d shards done)", ts.ShardsDone, ts.Shards)
	}
	if ts.Node != "" {
		s += " on " + ts.Node
	}
	var steps []string
	for _, st := range ts.Steps {
		steps = append(steps, fmt.Sprintf("%s %s", st.Step, HumanSeconds(st.Seconds)))
	}
	if len(steps) > 0 {
		s += "; steps: " + strings.Join(steps, ", ")
	}
	if ts.Error != "" {
		s += ": " + ts.Error
	}
	return s
}

// line describes a node on one line.
func (n NodeState) line() string {
	s := fmt.Sprintf("%-16s %s pid %d, %d shard(s) in work, %d done, %s rows/s", n.ID, n.Host, n.PID, n.InWork,
		n.ShardsDone, HumanCount(n.Rate.RowsPerSec))
	if n.Phase != "" {
		s += ", phase " + n.Phase
	}
	s += fmt.Sprintf(", heartbeat %s ago", HumanSeconds(n.HeartbeatAge))
	if n.StatusAddr != "" {
		s += ", http://" + n.StatusAddr
	}
	return s
}

func (r Rate) String() string {
	return fmt.Sprintf("%s/s (%s rows/s)", HumanBytes(int64(r.BytesPerSec)), HumanCount(r.RowsPerSec))
}

// HumanBytes formats a byte count in decimal units.
func HumanBytes(b int64) string {
	const unit = 1000
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(b)/float64(div), "kMGTPE"[exp])
}

// HumanSeconds formats a duration in seconds: to 0.1 s below a minute,
// to the second above.
func HumanSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// HumanCount formats a count or rate: 950, 12.3k, 4.5M.
func HumanCount(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.1fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}
