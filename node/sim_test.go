package node

// The coordination simulation: N virtual nodes (goroutines, each with its own
// etcd client and session) against one embedded etcd, M shards, and a sink
// that only sleeps. Everything but the data path is storm's own code: the
// session, register and heartbeat, the job spec, the leader phases through
// election.Once, the plan's Txns (writeShards, 100 puts per Txn), each
// node's view, the workers' claim, complete and release (worker.run and
// worker.shard with meta.ImportPool), then verify-plan, verify (mode off),
// finalize and the barrier. Only worker.load is replaced, by a sleep.
//
//	make sim     STORM_SIM=1 go test ./node -run TestSimulation -v -timeout 60m
//
// STORM_SIM_SIZES lists NODESxSHARDS[@SINK_MS] runs (defaultSimSizes);
// STORM_SIM_WORKERS (2), STORM_SIM_SHARD_MS (20), STORM_SIM_TTL (10) and
// STORM_SIM_KILL (0.1, the share of nodes killed) tune them. Each virtual
// node's etcd requests go through a gRPC interceptor that counts them by
// what they do. Halfway through the import, a tenth of the nodes "crash":
// their client is closed (keepalives stop, nothing is revoked or released)
// and the time until every shard they held is claimed by another node is
// measured. TestSimulationSmoke runs a small one with the normal tests.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"storm/election"
	"storm/import/checksum"
	"storm/import/sink"
	"storm/import/source"
	"storm/internal/etcdserver"
	"storm/meta"
)

type simConfig struct {
	Nodes, Shards, Workers int
	ShardTime              time.Duration // the sink's sleep per shard
	TTL                    int           // lease seconds
	Kill                   float64       // share of the nodes killed when half the shards are done
}

type simResult struct {
	cfg        simConfig
	plan       time.Duration // writing the shards: the plan-source phase
	importTime time.Duration // plan done to last shard done
	importReqs map[string]int64
	jobReqs    map[string]int64
	rangeBytes int64 // bytes of the Range answers over the job
	killed     int
	orphans    int           // shards the killed nodes held
	reclaim    time.Duration // kill to the last orphan claimed again (or done)
	barrier    time.Duration // last shard done to the barrier's finish time
	seen       time.Duration // last shard done to the last live node seeing the barrier
}

func (r simResult) total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// reqCounter counts the etcd requests of the virtual nodes by what they do.
type reqCounter struct {
	job        meta.Job
	mu         sync.Mutex
	kinds      map[string]int64
	rangeBytes int64
}

func (c *reqCounter) add(kind string, n int64) {
	c.mu.Lock()
	c.kinds[kind] += n
	c.mu.Unlock()
}

func (c *reqCounter) snapshot() (map[string]int64, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return copyCounts(c.kinds), c.rangeBytes
}

func copyCounts(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func diff(a, b map[string]int64) map[string]int64 {
	out := copyCounts(b)
	for k, v := range a {
		out[k] -= v
		if out[k] == 0 {
			delete(out, k)
		}
	}
	return out
}

// dialOptions count one client's requests until dead is set: a killed
// node's client is closed, and what it still tries never reaches etcd.
func (c *reqCounter) dialOptions(dead *atomic.Bool) []grpc.DialOption {
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if dead.Load() {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		return c.unary(ctx, method, req, reply, cc, invoker, opts...)
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if dead.Load() {
			return streamer(ctx, desc, cc, method, opts...)
		}
		return c.stream(ctx, desc, cc, method, streamer, opts...)
	}
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream)}
}

func (c *reqCounter) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	kind := method[strings.LastIndexByte(method, '/')+1:]
	switch r := req.(type) {
	case *pb.TxnRequest:
		resp, _ := reply.(*pb.TxnResponse)
		kind = c.txnKind(r, resp, err)
	case *pb.PutRequest:
		kind = "put " + c.kindOf(r.Key)
	case *pb.RangeRequest:
		kind = "range " + c.kindOf(r.Key)
		if resp, ok := reply.(*pb.RangeResponse); ok && err == nil {
			c.mu.Lock()
			c.rangeBytes += int64(proto.Size(resp))
			c.mu.Unlock()
		}
	case *pb.DeleteRangeRequest:
		kind = "delete " + c.kindOf(r.Key)
	}
	c.add(kind, 1)
	return err
}

// kindOf names the key's directory in the job ("claims", "election", ...).
func (c *reqCounter) kindOf(key []byte) string {
	if k, ok := c.job.Parse(string(key)); ok {
		return string(k.Kind)
	}
	if rest, ok := strings.CutPrefix(string(key), c.job.Root()); ok { // a directory: shards/, done/
		kind, _, _ := strings.Cut(rest, "/")
		return kind
	}
	return "other"
}

func (c *reqCounter) txnKind(r *pb.TxnRequest, resp *pb.TxnResponse, err error) string {
	puts := map[string]bool{}
	var dels, gets []string
	for _, op := range r.Success {
		switch {
		case op.GetRequestPut() != nil:
			puts[c.kindOf(op.GetRequestPut().Key)] = true
		case op.GetRequestDeleteRange() != nil:
			dels = append(dels, c.kindOf(op.GetRequestDeleteRange().Key))
		case op.GetRequestRange() != nil:
			gets = append(gets, c.kindOf(op.GetRequestRange().Key))
		}
	}
	switch {
	case puts[string(meta.KindClaims)]:
		if err == nil && resp != nil && !resp.Succeeded {
			return "txn claim (conflict)"
		}
		return "txn claim"
	case puts[string(meta.KindDone)]:
		return "txn complete"
	case puts[string(meta.KindFailed)]:
		return "txn fail"
	case len(puts) == 0 && len(dels) > 0 && slices.Contains(dels, string(meta.KindClaims)):
		return "txn release"
	case len(puts) > 0:
		var ks []string
		for k := range puts {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return "txn put " + strings.Join(ks, "+")
	case len(gets) > 0:
		return "txn read"
	}
	return "txn other"
}

type countingStream struct {
	grpc.ClientStream
	c    *reqCounter
	kind string
}

// SendMsg counts the messages a stream sends: watch creations, keepalives.
func (s *countingStream) SendMsg(m any) error {
	s.c.add(s.kind, 1)
	return s.ClientStream.SendMsg(m)
}

func (c *reqCounter) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return s, err
	}
	kind := "stream " + method[strings.LastIndexByte(method, '/')+1:]
	return &countingStream{ClientStream: s, c: c, kind: kind}, nil
}

// simNode is one virtual node: storm's Node with its own client.
type simNode struct {
	n      *Node
	cancel context.CancelFunc
	dead   atomic.Bool
	err    error
}

func simConfigFromEnv(nodes, shards int) simConfig {
	env := func(k string, d float64) float64 {
		if v, err := strconv.ParseFloat(os.Getenv(k), 64); err == nil {
			return v
		}
		return d
	}
	return simConfig{Nodes: nodes, Shards: shards, Workers: int(env("STORM_SIM_WORKERS", 2)),
		ShardTime: time.Duration(env("STORM_SIM_SHARD_MS", 20) * float64(time.Millisecond)),
		TTL:       int(env("STORM_SIM_TTL", 10)), Kill: env("STORM_SIM_KILL", 0.1)}
}

// defaultSimSizes: the full size paced with a 1 s sink, so that the
// simulator (one process of 2 CPUs running etcd and a hundred nodes'
// watches) has CPU to spare and the takeover and barrier times are
// storm's, not the simulator's backlog; and 20 nodes at full speed over
// the same 100,000 shards, to show that the requests per shard and the
// barrier do not depend on N.
const defaultSimSizes = "100x100000@1000,20x100000"

func TestSimulation(t *testing.T) {
	if os.Getenv("STORM_SIM") == "" {
		t.Skip("the coordination simulation runs with STORM_SIM=1 (make sim)")
	}
	sizes := os.Getenv("STORM_SIM_SIZES")
	if sizes == "" {
		sizes = defaultSimSizes
	}
	var results []simResult
	for _, size := range strings.Split(sizes, ",") {
		size = strings.TrimSpace(size)
		dims, ms, paced := strings.Cut(size, "@")
		a, b, _ := strings.Cut(dims, "x")
		nodes, err1 := strconv.Atoi(a)
		shards, err2 := strconv.Atoi(b)
		sleep, err3 := strconv.Atoi(ms)
		if err1 != nil || err2 != nil || paced && err3 != nil {
			t.Fatalf("STORM_SIM_SIZES: %q is not NODESxSHARDS[@SINK_MS]", size)
		}
		cfg := simConfigFromEnv(nodes, shards)
		if paced {
			cfg.ShardTime = time.Duration(sleep) * time.Millisecond
		}
		t.Run(size, func(t *testing.T) { results = append(results, runSim(t, cfg)) })
	}
	fmt.Println()
	fmt.Print(simReport(results))
}

// TestSimulationSmoke is a small simulation for the normal tests: every
// shard done once, the barrier written, a few requests per shard, the
// killed node's shards taken over within the lease TTL and a little.
func TestSimulationSmoke(t *testing.T) {
	cfg := simConfig{Nodes: 6, Shards: 600, Workers: 2, ShardTime: 5 * time.Millisecond, TTL: 2, Kill: 0.2}
	r := runSim(t, cfg)
	t.Logf("\n%s", simReport([]simResult{r}))
	if per := float64(r.total(r.importReqs)) / float64(cfg.Shards); per > 6 {
		t.Errorf("%.2f etcd requests per shard in the import, want a small constant", per)
	}
	if r.orphans > 0 && r.reclaim > time.Duration(cfg.TTL)*time.Second+5*time.Second {
		t.Errorf("the killed node's shards were claimed again after %s, lease TTL %ds", r.reclaim, cfg.TTL)
	}
}

func runSim(t *testing.T, cfg simConfig) simResult {
	res := simResult{cfg: cfg}
	srv, obs := etcdserver.StartT(t)
	jobID := fmt.Sprintf("sim-%d-%d-%d", cfg.Nodes, cfg.Shards, time.Now().UnixNano()%1e6)
	job, err := meta.NewJob("/storm", jobID)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()

	// finalize counts rejected rows in the target: the package's MariaDB.
	target, err := sink.Open(ctx, sink.Config{Host: testDB.Host, Port: testDB.Port, User: testDB.User, Password: testDB.Password, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := target.EnsureMeta(ctx); err != nil {
		t.Fatal(err)
	}

	spec := meta.Spec{Job: jobID, Source: meta.SourceSpec{Dir: "/sim", CSV: source.DefaultCSV()},
		Import: meta.ImportSpec{ShardSize: 64 << 20, BatchSize: 4 << 20, OnDuplicate: "error", Mode: "auto"},
		Verify: meta.VerifySpec{Mode: meta.VerifyOff}}
	counter := &reqCounter{job: job, kinds: map[string]int64{}}
	quiet := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
	if path := os.Getenv("STORM_SIM_LOG"); path != "" {
		// Every node's info log in one file, to see where the time goes.
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		quiet = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}

	var planStart, planEnd atomic.Int64
	planFn := func(n *Node) election.Func {
		return func(ctx context.Context, l *election.Leader) (any, error) {
			planStart.Store(time.Now().UnixNano())
			shards := make([]meta.Shard, cfg.Shards)
			sum := meta.PlanSummary{Source: meta.MainSource, Dir: "/sim", Shards: cfg.Shards}
			for i := range shards {
				table := fmt.Sprintf("t%02d", i%20)
				id := meta.ShardID(meta.MainSource, "simdb", table, i/20)
				shards[i] = meta.Shard{ID: id, Source: meta.MainSource, DB: "simdb", Table: table, Bytes: 64 << 20,
					Chunk: source.Chunk{Path: "/sim/simdb." + table + ".00000.csv", Format: source.FormatCSV,
						Start: int64(i/20) * 64 << 20, End: int64(i/20+1) * 64 << 20, StartLine: 1}}
			}
			for i := 0; i < 20 && i < cfg.Shards; i++ {
				sum.Tables = append(sum.Tables, meta.PlanTable{DB: "simdb", Table: fmt.Sprintf("t%02d", i)})
			}
			if err := writeShards(ctx, l, n.job, shards); err != nil {
				return nil, err
			}
			planEnd.Store(time.Now().UnixNano())
			return sum, nil
		}
	}
	// The sink that only sleeps, in batches as write does, with its
	// throttled progress records.
	sleeper := func(n *Node) func(ctx context.Context, log *slog.Logger, s meta.Shard, epoch int64) (sink.Checkpoint, int64, []string, error) {
		return func(ctx context.Context, log *slog.Logger, s meta.Shard, epoch int64) (sink.Checkpoint, int64, []string, error) {
			cp := sink.Checkpoint{Job: n.job.ID, Shard: s.ID, Epoch: epoch}
			lastSent := time.Now()
			const batches = 4
			for b := 0; b < batches; b++ {
				select {
				case <-time.After(cfg.ShardTime / batches):
				case <-ctx.Done():
					return cp, 0, nil, ctx.Err()
				}
				cp.Rows += 1000
				cp.DigestCount += 1000
				if time.Since(lastSent) > n.cfg.ProgressInterval {
					lastSent = time.Now()
					n.putProgress(ctx, s.ID, cp.Rows, int64(b+1)*s.Bytes/batches)
				}
			}
			cp.NextOffset, cp.Finished = s.Chunk.End, true
			return cp, cp.Rows, []string{"id"}, nil
		}
	}

	nodes := make([]*simNode, cfg.Nodes)
	var wg sync.WaitGroup
	var seenLast atomic.Int64
	for i := range nodes {
		sn := &simNode{}
		cli, err := clientv3.New(clientv3.Config{
			Endpoints: []string{srv.ClientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
			DialOptions: counter.dialOptions(&sn.dead),
		})
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("n%03d", i)
		n := &Node{cfg: Config{Spec: spec, Prefix: "/storm", LeaseTTL: cfg.TTL, NodeID: id, Workers: cfg.Workers,
			ProgressInterval: 2 * time.Second, Log: quiet, Out: io.Discard},
			spec: spec, job: job, log: quiet, cli: cli, target: target,
			dcols: map[string][]checksum.Column{}}
		nctx, ncancel := context.WithCancel(ctx)
		sn.n, sn.cancel = n, ncancel
		nodes[i] = sn
		wg.Go(func() {
			defer cli.Close()
			sn.err = simNodeRun(nctx, n, cfg, planFn(n), sleeper(n))
			if sn.err == nil {
				now := time.Now().UnixNano()
				for old := seenLast.Load(); now > old && !seenLast.CompareAndSwap(old, now); old = seenLast.Load() {
				}
			}
		})
	}

	// Wait for the plan, then snapshot the requests: the import starts.
	for planEnd.Load() == 0 {
		if ctx.Err() != nil {
			t.Fatal("no plan")
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.plan = time.Duration(planEnd.Load() - planStart.Load())
	beforeImport, _ := counter.snapshot()

	// Halfway, kill a share of the nodes: close their client first (no
	// release, no revoke gets out), then stop their goroutines.
	var orphanIDs map[string]bool
	var killAt time.Time
	var reclaimedAt atomic.Int64 // unix nanoseconds
	var lastDone time.Time
	kill := int(float64(cfg.Nodes) * cfg.Kill)
	doneKeys := func() int64 {
		r, err := obs.Get(ctx, job.Dir(meta.KindDone), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return r.Count
	}
	for kill > 0 && doneKeys() < int64(cfg.Shards/2) {
		time.Sleep(20 * time.Millisecond)
	}
	if kill > 0 {
		victims := map[string]bool{}
		for k := 0; k < kill; k++ {
			sn := nodes[(k*cfg.Nodes)/kill+cfg.Nodes/kill-1]
			sn.dead.Store(true)
			sn.n.cli.Close()
			sn.cancel()
			victims[sn.n.cfg.NodeID] = true
		}
		killAt = time.Now()
		r, err := obs.Get(ctx, job.Dir(meta.KindClaims), clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		orphanIDs = map[string]bool{}
		for _, kv := range r.Kvs {
			var c meta.Claim
			if meta.Decode(string(kv.Key), kv.Value, &c) == nil && victims[c.Node] {
				k, _ := job.Parse(string(kv.Key))
				orphanIDs[k.Name] = true
			}
		}
		res.killed, res.orphans = kill, len(orphanIDs)
		// Watch from the read on: each orphan is claimed by a live node, or
		// done (it may have finished just before the kill).
		go func() {
			left := copyCounts(map[string]int64{})
			for id := range orphanIDs {
				left[id] = 1
			}
			for wr := range obs.Watch(ctx, job.Root(), clientv3.WithPrefix(), clientv3.WithRev(r.Header.Revision+1)) {
				for _, ev := range wr.Events {
					k, ok := job.Parse(string(ev.Kv.Key))
					if !ok || left[k.Name] == 0 || ev.Type != clientv3.EventTypePut {
						continue
					}
					var c meta.Claim
					if k.Kind == meta.KindDone || k.Kind == meta.KindClaims && meta.Decode(string(ev.Kv.Key), ev.Kv.Value, &c) == nil && !victims[c.Node] {
						delete(left, k.Name)
					}
				}
				if len(left) == 0 {
					reclaimedAt.Store(time.Now().UnixNano())
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, sn := range nodes {
		if !sn.dead.Load() && sn.err != nil {
			t.Errorf("%s: %v", sn.n.cfg.NodeID, sn.err)
		}
	}
	after, rangeBytes := counter.snapshot()
	res.importReqs = diff(beforeImport, after)
	res.jobReqs = after
	res.rangeBytes = rangeBytes
	if at := reclaimedAt.Load(); at != 0 {
		res.reclaim = time.Unix(0, at).Sub(killAt)
	} else if len(orphanIDs) > 0 {
		t.Errorf("the killed nodes' %d shards were never claimed again", len(orphanIDs))
	}

	b, _, err := meta.ReadBarrier(ctx, obs, job)
	if err != nil || b == nil || b.Status != meta.StatusSucceeded {
		t.Fatalf("barrier %+v, %v", b, err)
	}
	r, err := obs.Get(ctx, job.Dir(meta.KindDone), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) != cfg.Shards {
		t.Fatalf("%d shards done, want %d", len(r.Kvs), cfg.Shards)
	}
	for _, kv := range r.Kvs {
		var d meta.Done
		if err := meta.Decode(string(kv.Key), kv.Value, &d); err != nil {
			t.Fatal(err)
		}
		if d.At.After(lastDone) {
			lastDone = d.At
		}
	}
	res.importTime = lastDone.Sub(time.Unix(0, planEnd.Load()))
	res.barrier = b.Finished.Sub(lastDone)
	res.seen = time.Unix(0, seenLast.Load()).Sub(lastDone)
	if b.Rows != int64(cfg.Shards)*4000 {
		t.Errorf("barrier rows %d, want %d", b.Rows, cfg.Shards*4000)
	}
	return res
}

// simNodeRun is runSession with the plan of simulated shards and the
// import's data path replaced.
func simNodeRun(ctx context.Context, n *Node, cfg simConfig, plan election.Func,
	load func(context.Context, *slog.Logger, meta.Shard, int64) (sink.Checkpoint, int64, []string, error)) error {
	sess, err := concurrency.NewSession(n.cli, concurrency.WithTTL(cfg.TTL), concurrency.WithContext(ctx))
	if err != nil {
		return err
	}
	if err := n.register(ctx, sess); err != nil {
		return err
	}
	n.startSession(ctx, sess)
	if err := n.joinSpec(ctx); err != nil {
		return err
	}
	if _, err := n.runPhase(ctx, sess, meta.PhasePlan, func(context.Context, *election.Leader) (any, error) {
		return map[string]any{"sources": []string{meta.MainSource}}, nil
	}); err != nil {
		return err
	}
	if _, err := n.runPhase(ctx, sess, meta.PlanSource(meta.MainSource), plan); err != nil {
		return err
	}
	if _, err := n.runPhase(ctx, sess, meta.PhasePrepare, n.prepare); err != nil {
		return err
	}
	// importShards, with the sleeping sink.
	v := newView[meta.Shard](n.job, meta.ImportPool, n.cfg.NodeID, n.log).
		withSources(n.spec.Source.Sources(), func(meta.Shard) bool { return true })
	v.keepDone = true
	vctx, stopView := context.WithCancel(ctx)
	defer stopView()
	viewErr := make(chan error, 1)
	go func() { viewErr <- v.run(vctx, n.cli) }()
	select {
	case <-v.loaded:
	case err := <-viewErr:
		return err
	}
	n.setPhase(meta.PhaseImport)
	var wg sync.WaitGroup
	errs := make([]error, n.cfg.Workers)
	for i := range n.cfg.Workers {
		w := &worker{n: n, sess: sess, log: n.log, loadFn: load}
		wg.Go(func() { errs[i] = w.run(ctx, v) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if _, err := v.waitSettled(ctx); err != nil {
		return err
	}
	n.seedDone(v.doneRecords())
	stopView()
	if _, err := n.runPhase(ctx, sess, meta.PhaseVerifyPlan, n.verifyPlan); err != nil {
		return err
	}
	if err := n.verifyRanges(ctx, sess); err != nil {
		return err
	}
	if _, err := n.runPhase(ctx, sess, meta.PhaseVerify, n.verify); err != nil {
		return err
	}
	if _, err := n.runPhase(ctx, sess, meta.PhaseFinalize, n.finalize); err != nil {
		return err
	}
	_, err = meta.WaitBarrier(ctx, n.cli, n.job)
	sess.Close()
	return err
}

// simReport renders the results as a Markdown table.
func simReport(rs []simResult) string {
	var b strings.Builder
	fmt.Fprintln(&b, "| nodes x workers | shards | sink sleep | plan write | import (plan to last done) | etcd requests / shard, import | whole job | claim conflicts | killed nodes: shards held, re-claimed after (TTL) | last done to barrier | to last node exit |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		m := float64(r.cfg.Shards)
		fmt.Fprintf(&b, "| %d x %d | %d | %s | %.2fs (%d Txns) | %.1fs (%.0f shards/s) | %.2f | %.2f | %d (%.3f/shard) | %d: %d, %.1fs (%ds) | %dms | %dms |\n",
			r.cfg.Nodes, r.cfg.Workers, r.cfg.Shards, r.cfg.ShardTime, r.plan.Seconds(), r.jobReqs["txn put shards"],
			r.importTime.Seconds(), m/r.importTime.Seconds(),
			float64(r.total(r.importReqs))/m, float64(r.total(r.jobReqs))/m,
			r.jobReqs["txn claim (conflict)"], float64(r.jobReqs["txn claim (conflict)"])/m,
			r.killed, r.orphans, r.reclaim.Seconds(), r.cfg.TTL, r.barrier.Milliseconds(), r.seen.Milliseconds())
	}
	for _, r := range rs {
		fmt.Fprintf(&b, "\n%d nodes x %d shards, requests over the whole job (per shard), range answers %.1f MB:\n", r.cfg.Nodes, r.cfg.Shards, float64(r.rangeBytes)/1e6)
		var ks []string
		for k := range r.jobReqs {
			ks = append(ks, k)
		}
		sort.Slice(ks, func(i, j int) bool { return r.jobReqs[ks[i]] > r.jobReqs[ks[j]] })
		for _, k := range ks {
			fmt.Fprintf(&b, "  %-28s %9d  %.4f\n", k, r.jobReqs[k], float64(r.jobReqs[k])/float64(r.cfg.Shards))
		}
	}
	return b.String()
}
