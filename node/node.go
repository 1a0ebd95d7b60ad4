// Package node is a storm node's life: join the job in etcd, run the phases
// (leader phases through election.Once, the import on every node), watch for
// the barrier, and exit with the job's result.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"golang.org/x/sync/errgroup"

	"storm/import/checksum"
	"storm/import/sink"
	"storm/import/source"
	"storm/import/storage"
	"storm/internal/etcdserver"
	"storm/meta"
)

// Exit codes, the same for `storm node`, `storm wait` and a late node.
const (
	ExitOK        = 0
	ExitJobFailed = 1
	ExitUsage     = 2
	ExitLost      = 3
)

// Config is everything a node needs; main builds it from storm.toml.
type Config struct {
	Spec      meta.Spec
	Prefix    string
	Endpoints []string
	LeaseTTL  int // seconds
	NodeID    string
	Workers   int
	Password  string // never stored in etcd
	// Security is this node's TLS and etcd credentials (node/security.go).
	Security Security
	// S3 is this node's [source.s3]: the endpoint and credentials of the
	// sources in object storage. Per node, never in the spec.
	S3 storage.S3Config

	// Embed runs a single-member etcd serving Endpoints[0] inside the node.
	Embed    bool
	EmbedDir string

	// StartTimeout bounds how long etcd and the database are retried at start.
	StartTimeout     time.Duration
	ProgressInterval time.Duration
	Log              *slog.Logger
	Out              io.Writer // where the final result is printed
	Console          *Console  // stderr: a terminal gets a progress bar (node/console.go)
	StatusAddr       string    // serve /metrics, /status, /debug/pprof here; "" is off (node/httpserver.go)
	// ExitWhenIdle: once this node's own sources are done and it can claim
	// nothing more, it exits 0 without waiting for the barrier.
	ExitWhenIdle bool
}

// ExitError carries the exit code an error should end the process with.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}
func (e *ExitError) Unwrap() error { return e.Err }

func usage(format string, a ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, a...)}
}

// Node is one running storm node.
type Node struct {
	cfg     Config
	spec    meta.Spec
	job     meta.Job
	log     *slog.Logger
	cli     *clientv3.Client
	target  *sink.Target
	metrics metrics

	// doneCache: the done records for the phases after the import
	// (node/verify.go readDone); only the node's run goroutine uses it.
	doneCache *doneCache

	colMu sync.Mutex
	dcols map[string][]checksum.Column
	// layouts: what the job plan listed of each source, for the source's
	// plan (node/plan.go keepLayout).
	layouts map[string]*source.Layout
	// rowHash is the spec's (verify.row-hash); both sides of every digest
	// use it.
	rowHash checksum.RowHash
}

type metrics struct {
	rows, batches, claims atomic.Int64
	ops                   // node/metrics.go
}

// errIdle ends a node that has done all it can (node.exit-when-idle); the
// job goes on with its peers.
var errIdle = errors.New("idle: this node's sources are done and it can claim nothing more")

// errSessionLost ends one attempt at the job; the node joins again.
var errSessionLost = errors.New("etcd session lost")

// Run takes part in the job until its barrier exists and returns the exit
// code: 0 when the job succeeded, 1 when it failed.
func Run(ctx context.Context, cfg Config) (int, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	job, err := meta.NewJob(cfg.Prefix, cfg.Spec.Job)
	if err != nil {
		return ExitUsage, usage("job: %w", err)
	}
	rowHash := checksum.DefaultRowHash
	if name := cfg.Spec.Verify.RowHash; name != "" {
		if rowHash, err = checksum.RowHashNamed(name); err != nil {
			return ExitUsage, usage("verify: %w", err)
		}
	}
	n := &Node{cfg: cfg, spec: cfg.Spec, job: job, dcols: map[string][]checksum.Column{}, rowHash: rowHash,
		log: cfg.Log.With("job", job.ID, "node", cfg.NodeID)}
	n.log = n.withPhase(n.log) // node/console.go: every line says the phase
	n.cfg.Log = n.log
	n.cfg.S3.Log = n.log
	if code, err := checkS3Sources(ctx, n.cfg); err != nil {
		return code, err
	}

	if cfg.Embed && cfg.ExitWhenIdle {
		// Its peers need its etcd until the barrier.
		n.log.Warn("node.exit-when-idle is ignored on the node that embeds etcd")
		n.cfg.ExitWhenIdle = false
	}
	if cfg.Embed {
		srv, err := n.startEmbedded(ctx)
		if err != nil {
			return ExitUsage, err
		}
		defer srv.Close()
	}
	n.cli, err = ConnectEtcd(ctx, cfg.etcdAccess(), cfg.StartTimeout)
	if err != nil {
		return ExitUsage, err
	}
	defer n.cli.Close()
	stopHTTP, err := n.serveHTTP(ctx) // node/httpserver.go
	if err != nil {
		return ExitUsage, err
	}
	defer stopHTTP()

	// Every phase is idempotent, so any trouble short of a config error is
	// met by joining again: a lost session, an etcd or database hiccup.
	const maxAttempts = 10
	for attempt := 1; ; attempt++ {
		claims := n.metrics.claims.Load()
		b, err := n.attempt(ctx)
		if err == nil {
			n.setPhase(nodePhaseFinished)
			if n.target != nil && len(n.spec.Target.Hosts) > 0 {
				n.log.Info("connections opened per SQL server", "servers", n.target.Opened())
			}
			n.report(b)
			if cfg.Embed {
				n.waitPeersGone(ctx)
			}
			return b.ExitCode(), nil
		}
		if errors.Is(err, errIdle) {
			n.log.Info("exiting when idle: this node's sources are done; peers finish the job")
			fmt.Fprintf(n.cfg.Out, "job %s: node %s done with its part (node.exit-when-idle); the job goes on\n", n.job.ID, n.cfg.NodeID)
			return ExitOK, nil
		}
		var ee *ExitError
		if errors.As(err, &ee) || ctx.Err() != nil {
			return exitCode(err), err
		}
		if errors.Is(err, errSessionLost) {
			n.log.Warn("lost the etcd session; stopped work, rejoining", "attempt", attempt)
			attempt = 0
		} else {
			n.log.Warn("attempt failed; rejoining", "attempt", attempt, "err", err)
			// The budget is for attempts in a row that get nothing done. An
			// attempt that claimed shards before it failed (an etcd leader
			// change fails the requests in flight) starts it afresh, or else
			// a long import would give up after its tenth etcd hiccup.
			if n.metrics.claims.Load() > claims {
				attempt = 0
			}
		}
		if attempt >= maxAttempts {
			return ExitLost, fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		select {
		case <-time.After(time.Duration(max(attempt, 1)) * time.Second):
		case <-ctx.Done():
			return ExitLost, ctx.Err()
		}
	}
}

// checkS3Sources configures this process's S3 client and lists each
// s3:// source this node reads, so that a wrong key, endpoint, bucket or
// prefix ends the node at start (exit 2) rather than failing the plan.
func checkS3Sources(ctx context.Context, cfg Config) (int, error) {
	storage.ConfigureS3(cfg.S3)
	for _, src := range cfg.Spec.Source.Sources() {
		if !storage.IsRemote(src.Dir) || !src.Readable(cfg.NodeID) {
			continue
		}
		if err := storage.Probe(ctx, src.Dir); err != nil {
			err = fmt.Errorf("source %s: %w", src.ID, err)
			if errors.Is(err, storage.ErrUnavailable) || ctx.Err() != nil {
				return ExitLost, err
			}
			return ExitUsage, usage("%w", err)
		}
	}
	return ExitOK, nil
}

func exitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitLost
}

// Connect dials etcd without TLS or credentials and checks it answers,
// retrying for up to timeout (ConnectEtcd, node/security.go).
func Connect(ctx context.Context, endpoints []string, timeout time.Duration) (*clientv3.Client, error) {
	return ConnectEtcd(ctx, EtcdAccess{Endpoints: endpoints}, timeout)
}

func (n *Node) startEmbedded(ctx context.Context) (*etcdserver.Server, error) {
	if len(n.cfg.Endpoints) == 0 {
		return nil, usage("--embed-etcd needs etcd.endpoints: the first one is served")
	}
	peer, err := etcdserver.PeerURLFor(n.cfg.Endpoints[0])
	if err != nil {
		return nil, usage("etcd.endpoints[0]: %w", err)
	}
	dir := n.cfg.EmbedDir
	if dir == "" {
		dir = "storm-etcd-" + n.job.ID
	}
	tls, err := n.cfg.embedTLS() // node/security.go
	if err != nil {
		return nil, usage("%w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	srv, err := etcdserver.Start(sctx, etcdserver.Config{Dir: dir, ClientURL: n.cfg.Endpoints[0], PeerURL: peer, Name: n.cfg.NodeID, TLS: tls})
	if err != nil {
		return nil, usage("%w", err)
	}
	n.log.Info("embedded etcd serving", "client_url", n.cfg.Endpoints[0], "dir", dir)
	return srv, nil
}

// waitPeersGone keeps an embedded etcd up until the other nodes have seen
// the barrier and left (their node keys vanish), for at most a minute.
func (n *Node) waitPeersGone(ctx context.Context) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := n.cli.Get(ctx, n.job.Dir(meta.KindNodes), clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return
		}
		others := 0
		for _, kv := range resp.Kvs {
			if string(kv.Key) != n.job.Node(n.cfg.NodeID) {
				others++
			}
		}
		if others == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// attempt runs the job on one etcd session, from joining to the barrier.
func (n *Node) attempt(ctx context.Context) (meta.Barrier, error) {
	sess, err := concurrency.NewSession(n.cli, concurrency.WithTTL(n.cfg.LeaseTTL), concurrency.WithContext(ctx))
	if err != nil {
		return meta.Barrier{}, fmt.Errorf("etcd session: %w", err)
	}
	defer sess.Close()
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-sess.Done():
			cancel(errSessionLost)
		case <-sctx.Done():
		}
	}()
	b, err := n.runSession(sctx, sess)
	// The lease can be gone before the keepalive loop says so: a write on
	// it fails first.
	if err != nil && ctx.Err() == nil && (context.Cause(sctx) == errSessionLost || errors.Is(err, rpctypes.ErrLeaseNotFound)) {
		return b, errSessionLost
	}
	return b, err
}

func (n *Node) runSession(ctx context.Context, sess *concurrency.Session) (meta.Barrier, error) {
	if b, _, err := meta.ReadBarrier(ctx, n.cli, n.job); err != nil || b != nil {
		return deref(b), err
	}
	if err := n.register(ctx, sess); err != nil {
		return meta.Barrier{}, err
	}
	n.startSession(ctx, sess) // node/heartbeat.go
	if err := n.joinSpec(ctx); err != nil {
		return meta.Barrier{}, err
	}
	if n.target == nil {
		start := n.serverStart(ctx)
		t, err := openTarget(ctx, n.cfg, n.spec, start)
		if err != nil {
			return meta.Barrier{}, err
		}
		if hosts := n.spec.Target.Hosts; len(hosts) > 1 {
			n.log.Info("spreading connections over SQL servers", "servers", len(hosts), "first", hosts[start])
		}
		n.target = t
		n.metrics.target.Store(t) // for /metrics, read on another goroutine
	}

	planned, err := n.planSources(ctx, sess)
	if err != nil {
		return meta.Barrier{}, err
	}
	if planned {
		if _, err := n.runPhase(ctx, sess, meta.PhasePrepare, n.prepare); err != nil {
			return meta.Barrier{}, err
		}
		if err := n.importIfPrepared(ctx, sess); err != nil {
			return meta.Barrier{}, err
		}
	}
	if _, err := n.runPhase(ctx, sess, meta.PhaseVerifyPlan, n.verifyPlan); err != nil {
		return meta.Barrier{}, err
	}
	if err := n.verifyRanges(ctx, sess); err != nil {
		return meta.Barrier{}, err
	}
	if _, err := n.runPhase(ctx, sess, meta.PhaseVerify, n.verify); err != nil {
		return meta.Barrier{}, err
	}
	if _, err := n.runPhase(ctx, sess, meta.PhaseFinalize, n.finalize); err != nil {
		return meta.Barrier{}, err
	}
	return meta.WaitBarrier(ctx, n.cli, n.job)
}

// planSources runs the plan phase, then plans each source this node can
// read whose plan is not done yet. false: a plan failed.
func (n *Node) planSources(ctx context.Context, sess *concurrency.Session) (bool, error) {
	defer clear(n.layouts)
	plan, err := n.runPhase(ctx, sess, meta.PhasePlan, n.plan)
	if err != nil || plan.Error != "" {
		return false, err
	}
	var jp meta.JobPlan
	if len(plan.Summary) > 0 {
		if err := meta.Decode(n.job.PhaseMarker(meta.PhasePlan), plan.Summary, &jp); err != nil {
			return false, err
		}
	}
	for _, src := range n.spec.Source.Sources() {
		if !src.Readable(n.cfg.NodeID) {
			continue
		}
		m, err := n.runPhase(ctx, sess, meta.PlanSource(src.ID), n.planSource(src, jp))
		if err != nil || m.Error != "" {
			return false, err
		}
	}
	return true, nil
}

func deref(b *meta.Barrier) meta.Barrier {
	if b == nil {
		return meta.Barrier{}
	}
	return *b
}

// importShards runs the workers until no shard is left to do.
func (n *Node) importShards(ctx context.Context, sess *concurrency.Session) error {
	sources := n.spec.Source.Sources()
	readable := map[string]bool{}
	for _, src := range sources {
		readable[src.ID] = src.Readable(n.cfg.NodeID)
	}
	v := newView[meta.Shard](n.job, meta.ImportPool, n.cfg.NodeID, n.log).
		withSources(sources, func(s meta.Shard) bool { return readable[s.Source] })
	v.idleExit = n.cfg.ExitWhenIdle
	v.keepDone = true // for the phases after the import: seedDone
	stopView, err := v.start(ctx, n.cli)
	if err != nil {
		return err
	}
	defer stopView()
	live := v.snapshot
	n.metrics.shards.Store(&live) // storm_shards (node/metrics.go)
	defer func() {
		last := v.snapshot()
		frozen := func() counts { return last }
		n.metrics.shards.Store(&frozen) // the view is let go
	}()
	n.setPhase(meta.PhaseImport)
	n.log.Info("phase import: starting workers", "workers", n.cfg.Workers, "shards", v.snapshot().Shards)

	pctx, stopProgress := context.WithCancel(ctx)
	defer stopProgress()
	go n.logProgress(pctx, v)
	go n.keepTiKV(pctx, sess, v)

	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < n.cfg.Workers; i++ {
		w := &worker{n: n, sess: sess, log: n.log.With("worker", i)}
		g.Go(func() error { return w.run(gctx, v) })
	}
	if !n.cfg.ExitWhenIdle {
		// Each table's steps (node/steps.go) start when its last shard is
		// done, here or on a peer, while other tables still import. A node
		// that leaves when idle leaves them to its peers.
		g.Go(func() error { return n.runSteps(gctx, sess, v, n.cfg.Workers) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if n.cfg.ExitWhenIdle {
		// Decide on a view that has seen this node's own last shards done:
		// the last node of a job must not leave as idle and skip verify.
		c, err := v.waitOwnClaimsGone(ctx)
		if err != nil {
			return err
		}
		if !c.settled() && !c.stopping() && c.idle() {
			return errIdle
		}
		// The last node stays: the tables' steps must be done before
		// verify.
		if err := n.runSteps(ctx, sess, v, n.cfg.Workers); err != nil {
			return err
		}
	}
	// Our workers are idle; peers may still hold shards, and one may die
	// and hand its shard back, so keep the workers' view until all settle.
	c, err := v.waitSettled(ctx)
	if err != nil {
		return err
	}
	n.log.Info("phase import: settled", "done", c.Done, "failed", c.Failed, "shards", c.Shards, "cancelled", c.Cancel)
	n.seedDone(v.doneRecords())
	return nil
}

// logProgress logs a progress line at an interval (systemd and CI read logs,
// not terminals).
func (n *Node) logProgress(ctx context.Context, v *view[meta.Shard]) {
	if n.cfg.Console.Terminal() {
		n.progressBar(ctx, v) // node/console.go
		return
	}
	t := time.NewTicker(n.cfg.ProgressInterval * 5)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c := v.snapshot()
			n.log.Info("progress", "done", c.Done, "in_work", c.Claimed, "pending", c.Pending, "failed", c.Failed,
				"shards", c.Shards, "rows_written_here", n.metrics.rows.Load())
		}
	}
}

func (n *Node) putProgress(ctx context.Context, shard string, rows, bytes int64) {
	p := meta.Progress{Node: n.cfg.NodeID, Rows: rows, Bytes: bytes, At: time.Now().UTC()}
	if _, err := n.cli.Put(ctx, n.job.Progress(shard), meta.Encode(p)); err != nil {
		n.log.Debug("progress not recorded", "shard", shard, "err", err)
	}
}

// columns are the target table's columns (the target caches them).
func (n *Node) columns(ctx context.Context, db, table string) ([]sink.Column, error) {
	c, err := n.target.TableColumns(ctx, db, table)
	if err != nil {
		return nil, fmt.Errorf("columns of %s.%s: %w", db, table, err)
	}
	return c, nil
}

func (n *Node) report(b meta.Barrier) {
	fmt.Fprintf(n.cfg.Out, "job %s %s: %d rows in %d shards, %.1fs", b.Job, b.Status, b.Rows, b.Shards, b.Seconds)
	if b.Reason != "" {
		fmt.Fprintf(n.cfg.Out, ": %s", b.Reason)
	}
	fmt.Fprintln(n.cfg.Out)
}
