package node

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"golang.org/x/sync/errgroup"

	"storm/import/sink"
	"storm/import/source"
	"storm/jobctl"
	"storm/meta"
)

// A table's steps run once its last shard is done, as one item of the
// table-step pool, claimed on a lease like a shard by any node: build the
// deferred indexes (one ALTER TABLE adding those still missing), check
// that the table's index set is the one recorded at plan time, and
// ANALYZE TABLE (post.analyze). They run while other tables still import.
// Every step looks at the target before it acts, so a claimer that takes
// over from a dead one does only what is left (docs/table-pipeline.md).

func stepID(db, table string) string { return db + "." + table }

// stepsWakeEvery bounds how often one view's changes wake another's
// waiters: a job of 100,000 shards changes the import view as often, and
// each wake-up walks the tables.
const stepsWakeEvery = 100 * time.Millisecond

// forwardChanges calls to once at the start and then each time from's view
// changes, at most once a pause, until ctx ends. It takes the view's change
// channel before it calls to, so a change made while to runs or during the
// pause wakes it when the pause ends: the last change of a job (its last
// shard or its last table's steps done) is never lost to the pause.
func forwardChanges(ctx context.Context, pause time.Duration, from func() <-chan struct{}, to ...func()) {
	for {
		ch := from()
		for _, f := range to {
			f()
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// runSteps does table steps with up to workers goroutines until every
// table's steps are done or failed, or the import stops (a failed shard
// or a cancel: the steps of an import that will not succeed are not run).
func (n *Node) runSteps(ctx context.Context, sess *concurrency.Session, iv *view[meta.Shard], workers int) error {
	sv := newView[meta.TableStep](n.job, meta.StepPool, n.cfg.NodeID, n.log).
		withSources(n.spec.Source.Sources(), func(meta.TableStep) bool { return true })
	sv.order = nil
	stop, err := sv.start(ctx, n.cli)
	if err != nil {
		return err
	}
	defer stop()
	// The verify ranges the steps write are read back at once, by as many
	// workers, while other tables still import.
	vv := newView[meta.VerifyRange](n.job, meta.VerifyPool, n.cfg.NodeID, n.log)
	vv.more = func() bool {
		c := sv.snapshot()
		return !iv.snapshot().stopping() && !c.stopping() && (c.Done+c.Failed < c.Shards || c.SourcesWaiting > 0)
	}
	stopV, err := vv.start(ctx, n.cli)
	if err != nil {
		return err
	}
	defer stopV()
	fctx, stopForward := context.WithCancel(ctx)
	defer stopForward()
	// A table becomes ready when the import view sees its last shard
	// done: wake the step workers then; and the verify workers when the
	// steps settle.
	go forwardChanges(fctx, stepsWakeEvery, iv.changes, sv.poke, vv.poke)
	go forwardChanges(fctx, stepsWakeEvery, sv.changes, vv.poke)
	states := func() map[string]string { return n.tableStates(sv, iv) }
	n.metrics.tables.Store(&states)
	defer func() {
		// The last picture stays for /metrics once the steps are over.
		last := states()
		f := func() map[string]string { return last }
		n.metrics.tables.Store(&f)
	}()
	var mu sync.Mutex
	busy := map[string]bool{}
	g, gctx := errgroup.WithContext(ctx)
	for range workers {
		g.Go(func() error {
			for {
				id, r, ok := vv.next(gctx)
				if !ok {
					return nil
				}
				if err := n.verifyRange(gctx, sess, id, r); err != nil {
					return err
				}
			}
		})
	}
	for range workers {
		g.Go(func() error {
			for {
				id, s, ok := n.nextStep(gctx, sv, iv, &mu, busy)
				if !ok {
					return nil
				}
				err := n.tableSteps(gctx, sess, iv, id, s)
				mu.Lock()
				delete(busy, id)
				mu.Unlock()
				if err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// tableStates is each table's state as the step and import views see it,
// with the step this node runs for the tables it holds (/metrics).
func (n *Node) tableStates(sv *view[meta.TableStep], iv *view[meta.Shard]) map[string]string {
	out := map[string]string{}
	var open []meta.TableStep
	sv.mu.Lock()
	for id, s := range sv.shards {
		switch {
		case sv.done[id]:
			out[id] = jobctl.TableVerifying
		case sv.failed[id]:
			out[id] = jobctl.TableFailed
		case sv.claims[id] != "":
			out[id] = "steps"
		default:
			open = append(open, s)
		}
	}
	sv.mu.Unlock()
	for _, s := range open {
		out[stepID(s.DB, s.Table)] = jobctl.TableImporting
		if iv.groupDone(s.DB + "." + s.Table) {
			out[stepID(s.DB, s.Table)] = jobctl.TableWaiting
		}
	}
	n.metrics.steps.mu.Lock()
	for table, step := range n.metrics.steps.now {
		out[table] = step
		if state, ok := jobctl.StepState(step); ok {
			out[table] = state
		}
	}
	n.metrics.steps.mu.Unlock()
	return out
}

// nextStep blocks until a table is ready for its steps and nobody holds
// it, and returns it; ok is false once every table's steps are settled or
// the import stops.
func (n *Node) nextStep(ctx context.Context, sv *view[meta.TableStep], iv *view[meta.Shard], mu *sync.Mutex, busy map[string]bool) (string, meta.TableStep, bool) {
	for {
		if ic := iv.snapshot(); ic.stopping() {
			return "", meta.TableStep{}, false
		}
		sv.mu.Lock()
		c := sv.countsLocked()
		if c.stopping() || c.Done+c.Failed == c.Shards && c.SourcesWaiting == 0 {
			sv.mu.Unlock()
			return "", meta.TableStep{}, false
		}
		type cand struct {
			id string
			s  meta.TableStep
		}
		var cands []cand
		for id, s := range sv.shards {
			if !sv.done[id] && !sv.failed[id] && sv.claims[id] == "" {
				cands = append(cands, cand{id, s})
			}
		}
		ch := sv.changed
		sv.mu.Unlock()
		sort.Slice(cands, func(i, j int) bool { return cands[i].id < cands[j].id })
		mu.Lock()
		for _, c := range cands {
			if !busy[c.id] && iv.groupDone(c.s.DB+"."+c.s.Table) {
				busy[c.id] = true
				mu.Unlock()
				return c.id, c.s, true
			}
		}
		mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return "", meta.TableStep{}, false
		}
	}
}

// stepError is a step's failure that doing it again won't mend.
type stepError struct{ err error }

func (e *stepError) Error() string { return e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// errStepsLost: a peer holds the table's steps now (this node's claim
// ended); they are its to finish.
var errStepsLost = errors.New("lost the claim of the table's steps")

// stepTries is how often a table's steps are tried in a row on a transient
// error before the claim is handed back; stepPause is the first pause
// between tries (tests shorten it).
var stepTries, stepPause = 3, time.Second

// stepFailed tells a genuine failure of a table's steps (the server refused
// a statement, or the table's indexes differ from its definition), which
// fails the table, from a transient one (etcd or the database out of reach
// for a while, a lock wait timed out), after which the steps are handed
// back to the pool to be done again: every step looks at the target before
// it acts, so a redo does only what is left.
func stepFailed(err error) bool {
	var se *stepError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	// A record in etcd that can't be read reads no better elsewhere.
	return errors.As(err, &se) || sink.ServerRefused(err) || errors.As(err, &syn) || errors.As(err, &typ)
}

// tableSteps claims a table's steps and does them. It returns an error
// only when the node must stop (ctx ended, or its etcd session is gone):
// a table whose steps fail for good is recorded as failed, and one
// interrupted by a transient error is handed back for this node or a peer
// to do again.
func (n *Node) tableSteps(ctx context.Context, sess *concurrency.Session, iv *view[meta.Shard], id string, s meta.TableStep) error {
	pool := meta.StepPool
	epoch, ok, err := pool.Claim(ctx, n.cli, n.job, id, n.cfg.NodeID, sess.Lease())
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return err
		}
		// Claim retries etcd's transient errors itself; whatever else
		// refused it, nothing was claimed: try again later.
		n.log.Warn("could not claim a table's steps; trying again later", "table", id, "err", err)
		pauseCtx(ctx, stepPause)
		return nil
	}
	if !ok {
		return nil
	}
	n.metrics.stepStarted(id)
	defer n.metrics.stepEnded(id)
	log := n.log.With("table", id, "epoch", epoch)
	var rec meta.PlanTable
	var steps []meta.StepResult
	var tv *meta.TableVerify
	var ac *meta.AdminChecksum
	for try := 1; ; try++ {
		rec, _, err = n.tableRecord(ctx, n.job.Key(meta.KindTables, id))
		if err == nil {
			steps, ac, err = n.doSteps(ctx, log, s, rec)
		}
		if err == nil {
			tv, err = n.planVerify(ctx, iv, id, epoch, s, rec, &steps)
		}
		if err == nil || ctx.Err() != nil || stepFailed(err) || errors.Is(err, errStepsLost) || try >= stepTries {
			break
		}
		log.Warn("table steps failed; trying again", "try", try, "err", err)
		pauseCtx(ctx, time.Duration(try)*stepPause)
	}
	switch {
	case ctx.Err() != nil:
		n.releaseSteps(ctx, id, epoch, false)
		return ctx.Err()
	case err == nil:
		d := meta.StepsDone{DB: s.DB, Table: s.Table, Steps: steps, Verify: tv, AdminChecksum: ac, Node: n.cfg.NodeID, Epoch: epoch, At: time.Now().UTC()}
		if _, err := pool.Complete(ctx, n.cli, n.job, id, epoch, d); err != nil {
			return n.stepsInterrupted(ctx, log, id, epoch, fmt.Errorf("record the steps done: %w", err))
		}
		log.Info("table steps done", "steps", stepsLine(steps))
		return nil
	case errors.Is(err, errStepsLost):
		log.Warn("table steps taken over by another node; dropping them", "err", err)
		return nil
	case stepFailed(err):
		log.Error("table steps failed", "err", err)
		file := rec.IndexSource
		if file == "" || file == "target" {
			file = id
		}
		f := meta.Failed{Shard: id, File: file, Reason: err.Error(), Node: n.cfg.NodeID, At: time.Now().UTC()}
		if _, ferr := pool.Fail(ctx, n.cli, n.job, id, epoch, f); ferr != nil {
			return n.stepsInterrupted(ctx, log, id, epoch, fmt.Errorf("record the failure (%v): %w", err, ferr))
		}
		return nil
	default:
		return n.stepsInterrupted(ctx, log, id, epoch, err)
	}
}

// stepsInterrupted hands a table's steps back after a transient error, for
// this node or a peer to do again, and returns nil; or the error itself
// when the node must stop.
func (n *Node) stepsInterrupted(ctx context.Context, log *slog.Logger, id string, epoch int64, err error) error {
	if ctx.Err() != nil || errors.Is(err, rpctypes.ErrLeaseNotFound) {
		// The node stops or joins again; its claim goes with its lease.
		n.releaseSteps(ctx, id, epoch, false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	log.Warn("table steps interrupted; handing them back to be done again", "err", err)
	n.releaseSteps(ctx, id, epoch, true)
	pauseCtx(ctx, 2*stepPause)
	return nil
}

// releaseSteps gives the table's steps back to the pool. With retry it
// tries until the release goes through or ctx ends: a claim left on a
// live lease would hold the table unworked until this node dies. (While
// etcd stays away, the lease ends, and the session and ctx with it.)
func (n *Node) releaseSteps(ctx context.Context, id string, epoch int64, retry bool) {
	for pause := stepPause; ; pause = min(2*pause, 5*time.Second) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
		err := meta.StepPool.Release(rctx, n.cli, n.job, id, epoch)
		cancel()
		if err == nil || !retry || ctx.Err() != nil {
			if err != nil {
				n.log.Debug("release of a table's steps failed; the lease will free them", "table", id, "err", err)
			}
			return
		}
		n.log.Warn("could not hand a table's steps back; trying again", "table", id, "err", err)
		pauseCtx(ctx, pause)
	}
}

// pauseCtx sleeps for d or until ctx ends.
func pauseCtx(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

func stepsLine(steps []meta.StepResult) string {
	var parts []string
	for _, st := range steps {
		parts = append(parts, fmt.Sprintf("%s %.2fs (%s)", st.Step, st.Seconds, st.Detail))
	}
	return strings.Join(parts, "; ")
}

// doSteps runs the steps of one table; each looks at the target first.
// On TiDB it also returns what ADMIN CHECKSUM TABLE read.
func (n *Node) doSteps(ctx context.Context, log interface{ Info(string, ...any) }, s meta.TableStep, rec meta.PlanTable) ([]meta.StepResult, *meta.AdminChecksum, error) {
	var out []meta.StepResult
	step := func(name string, fn func() (string, error)) error {
		n.metrics.stepPhase(stepID(s.DB, s.Table), name)
		p := meta.StepProgress{Node: n.cfg.NodeID, Step: name, At: time.Now().UTC()}
		if _, err := n.cli.Put(ctx, n.job.Key(meta.KindStepProgress, stepID(s.DB, s.Table)), meta.Encode(p)); err != nil {
			n.log.Debug("step progress not recorded", "table", stepID(s.DB, s.Table), "err", err)
		}
		start := time.Now()
		detail, err := fn()
		if err != nil {
			return err
		}
		secs := time.Since(start).Seconds()
		n.metrics.stepDone(stepID(s.DB, s.Table), name, secs)
		out = append(out, meta.StepResult{Step: name, Detail: detail, Seconds: secs})
		return nil
	}
	var deferred []source.Index
	for _, ix := range rec.Indexes {
		if ix.Deferred {
			deferred = append(deferred, ix)
		}
	}
	if len(deferred) > 0 {
		if err := step(meta.StepIndexes, func() (string, error) { return n.buildIndexes(ctx, s, deferred) }); err != nil {
			return out, nil, err
		}
	}
	if len(rec.Indexes) > 0 {
		if err := step(meta.StepCheck, func() (string, error) { return n.checkIndexes(ctx, s, rec) }); err != nil {
			return out, nil, err
		}
	}
	if n.spec.Post.Analyze {
		if err := step(meta.StepAnalyze, func() (string, error) { return n.analyze(ctx, s) }); err != nil {
			return out, nil, err
		}
	}
	var ac *meta.AdminChecksum
	if n.target.IsTiDB() && n.spec.Verify.Mode != meta.VerifyOff {
		// Never fails the step: the digest decides (node/tidbchecksum.go).
		_ = step(meta.StepAdminChecksum, func() (string, error) {
			ac = n.adminChecksum(ctx, s.DB, s.Table)
			if ac.Error != "" {
				return "failed: " + ac.Error, nil
			}
			return fmt.Sprintf("crc64xor %s, %d KVs, %d bytes", ac.CRC64XOR, ac.TotalKVs, ac.TotalBytes), nil
		})
	}
	return out, ac, nil
}

// planVerify decides how the table is verified and writes its verify
// ranges, under the steps' claim, for peers to read back now. nil: the
// verify-plan phase decides (the view keeps no sum of the done records).
func (n *Node) planVerify(ctx context.Context, iv *view[meta.Shard], id string, epoch int64, s meta.TableStep, rec meta.PlanTable, steps *[]meta.StepResult) (*meta.TableVerify, error) {
	rows, cols, note, ok := iv.tableSums(s.DB, s.Table)
	if !ok {
		return nil, nil
	}
	n.metrics.stepPhase(id, meta.StepVerifyPlan)
	start := time.Now()
	mode := n.spec.Verify.Mode
	if mode == "" {
		mode = meta.VerifyDigest
	}
	if rec.InitialRows > 0 {
		note = fmt.Sprintf("incremental: the table held %d rows before the import", rec.InitialRows)
	}
	pt := meta.PlanTable{DB: s.DB, Table: s.Table}
	vt, rs, err := n.planTableVerify(ctx, pt, mode, cols, note, rows)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(rs); i += maxTxnOps {
		var ops []clientv3.Op
		for _, r := range rs[i:min(i+maxTxnOps, len(rs))] {
			ops = append(ops, clientv3.OpPut(n.job.Key(meta.KindVerifyRanges, r.ID), meta.Encode(r)))
		}
		owned, err := meta.StepPool.PutOwned(ctx, n.cli, n.job, id, epoch, ops...)
		if err != nil {
			return nil, err
		}
		if !owned {
			return nil, fmt.Errorf("table %s: %w", id, errStepsLost)
		}
	}
	detail := vt.Mode
	if vt.Ranges > 0 {
		detail = fmt.Sprintf("digest in %d range(s)", vt.Ranges)
	}
	if vt.Note != "" {
		detail += ": " + vt.Note
	}
	*steps = append(*steps, meta.StepResult{Step: meta.StepVerifyPlan, Detail: detail, Seconds: time.Since(start).Seconds()})
	return &meta.TableVerify{Mode: vt.Mode, Ranges: vt.Ranges, Note: vt.Note}, nil
}

// buildIndexes adds the deferred indexes the table lacks, in one ALTER
// TABLE. A build another connection started (a dead claimer's ALTER still
// running on MariaDB, or its DDL job on TiDB, which outlives its client)
// is waited for first, never started twice.
func (n *Node) buildIndexes(ctx context.Context, s meta.TableStep, deferred []source.Index) (string, error) {
	db := n.target.DB()
	table := quoteIdent(s.DB) + "." + quoteIdent(s.Table)
	var found, added []string
	built := map[string]bool{} // added by this call, by lower-case name
	for dups := 0; ; {
		waited, err := n.waitOtherBuild(ctx, s)
		if err != nil {
			return "", err
		}
		have, err := targetIndexes(ctx, db, s.DB, s.Table)
		if err != nil {
			return "", err
		}
		var adds, names, raw []string
		found = found[:0]
		fulltext, later := false, false
		for _, ix := range deferred {
			if _, ok := have[strings.ToLower(ix.Name)]; ok {
				if !built[strings.ToLower(ix.Name)] {
					found = append(found, ix.Name)
				}
				continue
			}
			if ix.Kind == source.IndexFulltext || ix.Kind == source.IndexSpatial {
				// InnoDB on MySQL builds one FULLTEXT index an ALTER
				// (error 1795), and MariaDB copies the table for more:
				// the others follow in ALTERs of their own.
				if fulltext {
					later = true
					continue
				}
				fulltext = true
			}
			adds, names, raw = append(adds, "ADD "+ix.Def), append(names, quoteIdent(ix.Name)), append(raw, ix.Name)
		}
		if len(adds) == 0 && len(added) == 0 {
			d := fmt.Sprintf("all %d deferred already built (%s)", len(found), strings.Join(found, ", "))
			if waited != "" {
				d += "; waited for " + waited
			}
			return d, nil
		}
		if len(adds) > 0 {
			q := "ALTER TABLE " + table + " " + strings.Join(adds, ", ")
			n.log.Info("building deferred indexes", "table", stepID(s.DB, s.Table), "indexes", strings.Join(names, ", "))
			_, err = db.ExecContext(ctx, q)
		}
		if err == nil {
			for _, name := range raw {
				built[strings.ToLower(name)] = true
			}
			added = append(added, names...)
			if later {
				continue
			}
			d := "added " + strings.Join(added, ", ")
			if len(found) > 0 {
				d += "; found " + strings.Join(found, ", ")
			}
			if waited != "" {
				d += "; waited for " + waited
			}
			if fast := n.fastReorg(ctx); fast != "" {
				d += "; " + fast
			}
			return d, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1061 && dups < 2 {
			// Duplicate key name: a build we did not see finished first.
			dups++
			continue
		}
		err = fmt.Errorf("table %s: building index(es) %s: %w", stepID(s.DB, s.Table), strings.Join(names, ", "), err)
		if errors.As(err, &me) {
			return "", &stepError{err}
		}
		return "", err
	}
}

// fastReorg says whether TiDB builds indexes with its ingest path.
func (n *Node) fastReorg(ctx context.Context) string {
	if !n.target.IsTiDB() {
		return ""
	}
	var v string
	if err := n.target.DB().QueryRowContext(ctx, "SELECT @@global.tidb_ddl_enable_fast_reorg").Scan(&v); err != nil {
		return "tidb_ddl_enable_fast_reorg unknown"
	}
	if v == "1" || strings.EqualFold(v, "ON") {
		return "TiDB fast reorg (ingest) on"
	}
	return "TiDB fast reorg off: set tidb_ddl_enable_fast_reorg = ON for faster builds"
}

// otherBuild is an index build of a table that another connection runs:
// a dead claimer's ALTER TABLE still running on MariaDB or MySQL, or its
// DDL job on TiDB.
type otherBuild struct {
	name     string // for the log, the step's detail and errors
	id       string // the same build across looks: DDL job or connection id
	progress string // what changes while it works: states, row counts
	// working: the server says it is building (MariaDB and MySQL: the
	// ALTER's state is not "Waiting for ..."; TiDB: the job is in its
	// write-reorganization state, the backfill, which reports no progress
	// on some paths). Such a build is never given up on.
	working bool
	paused  bool // a TiDB DDL job paused (ADMIN PAUSE DDL JOBS)
}

// otherBuildStall is how long another connection's index build may stay
// blocked (neither working nor changing state: behind another
// transaction's metadata lock, say) or paused before storm stops waiting
// for it and fails the table, naming it; otherBuildPoll is how often it
// looks. Tests shorten both.
var otherBuildStall, otherBuildPoll = time.Hour, 500 * time.Millisecond

// otherBuildWarnEvery spaces the warnings about a paused build.
const otherBuildWarnEvery = 5 * time.Minute

// waitOtherBuild waits while another connection adds indexes to the
// table, and names what it waited for ("" if nothing). It gives up, and
// fails the table, when the same build has shown no progress for
// otherBuildStall: a paused DDL job is waited for as TiDB's own client of
// that ALTER waits (a DBA who pauses a build means to resume it), for as
// long.
func (n *Node) waitOtherBuild(ctx context.Context, s meta.TableStep) (string, error) {
	table := stepID(s.DB, s.Table)
	var waited string
	var last *otherBuild
	var since, warned time.Time
	for {
		b, err := n.findOtherBuild(ctx, s)
		if err != nil || b == nil {
			return waited, err
		}
		now := time.Now()
		switch {
		case last == nil:
			n.log.Info("another connection is building the table's indexes; waiting for it", "table", table, "build", b.name)
			since = now
		case b.id != last.id:
			n.log.Info("another build of the table's indexes; waiting for it", "table", table, "build", b.name)
			since = now
		case (b.working || b.progress != last.progress) && !b.paused:
			since = now
		}
		if b.paused && (last == nil || !last.paused || now.Sub(warned) >= otherBuildWarnEvery) {
			n.log.Warn("the DDL job building the table's indexes is paused; waiting for it to be resumed",
				"table", table, "build", b.name, "resume", "ADMIN RESUME DDL JOBS "+b.id, "gives_up_in", (otherBuildStall - now.Sub(since)).Round(time.Second))
			warned = now
		}
		if stalled := now.Sub(since); stalled >= otherBuildStall {
			how := "has been blocked (no progress)"
			fix := "see what holds it (a long transaction on the table holds its metadata lock)"
			if b.paused {
				how, fix = "has been paused", "resume it (ADMIN RESUME DDL JOBS "+b.id+") or cancel it (ADMIN CANCEL DDL JOBS "+b.id+")"
			}
			return waited, &stepError{fmt.Errorf("table %s: %s, building its indexes, %s for %s; storm stopped waiting for it: %s, then run storm job retry",
				table, b.name, how, stalled.Round(time.Second), fix)}
		}
		last, waited = b, b.name
		select {
		case <-time.After(otherBuildPoll):
		case <-ctx.Done():
			return waited, ctx.Err()
		}
	}
}

// findOtherBuild finds an index build of the table in progress elsewhere:
// on TiDB an add-index DDL job not finished, on MariaDB and MySQL an ALTER
// TABLE of storm's form in the process list. nil: none.
func (n *Node) findOtherBuild(ctx context.Context, s meta.TableStep) (*otherBuild, error) {
	db := n.target.DB()
	if n.target.IsTiDB() {
		return tidbIndexJob(ctx, db, s.DB, s.Table)
	}
	// storm's two forms: the steps' ADD, and the plan's DROP of the
	// deferred indexes of an existing table, which a plan leader that
	// died may have left queued behind a lock on the table: run late,
	// it would drop indexes the steps built.
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace("ALTER TABLE " + quoteIdent(s.DB) + "." + quoteIdent(s.Table))
	rows, err := db.QueryContext(ctx, "SELECT * FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND (INFO LIKE ? OR INFO LIKE ?) ORDER BY ID LIMIT 1",
		esc+" ADD %", esc+" DROP INDEX %")
	if err != nil {
		return nil, fmt.Errorf("process list: %w", err)
	}
	defer rows.Close()
	row, err := nextRow(rows)
	if err != nil || row == nil {
		return nil, err
	}
	// An ALTER that builds says so ("altering table", "copy to tmp
	// table", ...), without a measure of progress for an in-place index
	// build; one blocked says "Waiting for table metadata lock".
	state := row["STATE"]
	return &otherBuild{id: row["ID"], name: fmt.Sprintf("connection %s's ALTER TABLE (%s)", row["ID"], state), progress: state,
		working: !strings.HasPrefix(strings.ToLower(state), "waiting for")}, nil
}

// nextRow reads the next row by upper-case column name; nil at the end.
func nextRow(rows *sql.Rows) (map[string]string, error) {
	if !rows.Next() {
		return nil, rows.Err()
	}
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	row := make(map[string]string, len(cols))
	for i, c := range cols {
		row[strings.ToUpper(c)] = vals[i].String
	}
	return row, nil
}

// tidbIndexJob finds an unfinished DDL job that adds an index to the
// table: an ADD INDEX job, or a multi-schema change (an ALTER of several
// clauses) with an add-index sub-job. ADMIN SHOW DDL JOBS lists a
// multi-schema change as its job's row followed by a row per sub-job
// ("add index /* subjob */"); only the job's own state says whether it is
// over, or paused: a sub-job's row keeps a state of its own ("running"
// under a paused job, as the TiDB test server shows), which TiDB sets
// apart from the job's (node/steps_tidb_test.go).
func tidbIndexJob(ctx context.Context, db *sql.DB, schema, table string) (*otherBuild, error) {
	rows, err := db.QueryContext(ctx, "ADMIN SHOW DDL JOBS 100")
	if err != nil {
		return nil, fmt.Errorf("admin show ddl jobs: %w", err)
	}
	defer rows.Close()
	type job struct {
		id, typ, state string
		addsIndex      bool
		reorg          bool
		progress       []string
	}
	var order []*job
	jobs := map[string]*job{}
	for {
		row, err := nextRow(rows)
		if err != nil {
			return nil, err
		}
		if row == nil {
			break
		}
		if !strings.EqualFold(row["DB_NAME"], schema) || !strings.EqualFold(row["TABLE_NAME"], table) {
			continue
		}
		j := jobs[row["JOB_ID"]]
		if j == nil {
			j = &job{id: row["JOB_ID"]}
			jobs[j.id] = j
			order = append(order, j)
		}
		typ := strings.ToLower(row["JOB_TYPE"])
		sub := strings.Contains(typ, "/* subjob */")
		if !sub {
			j.typ, j.state = row["JOB_TYPE"], strings.ToLower(row["STATE"])
		}
		// A drop counts too: a plan leader that died with its DROP of
		// the deferred indexes queued leaves a job that may still run.
		if strings.HasPrefix(typ, "add index") || strings.HasPrefix(typ, "drop index") {
			j.addsIndex = true
		}
		j.progress = append(j.progress, row["STATE"]+"/"+row["SCHEMA_STATE"]+"/"+row["ROW_COUNT"])
		j.reorg = j.reorg || strings.EqualFold(row["SCHEMA_STATE"], "write reorganization")
	}
	for _, j := range order {
		if !j.addsIndex || j.state == "" {
			continue // not ours to wait for; or a sub-job row without its job's (not seen)
		}
		switch j.state {
		case "synced", "done", "cancelled", "rollback done":
			continue
		}
		return &otherBuild{id: j.id, name: fmt.Sprintf("DDL job %s (%s, %s)", j.id, j.typ, j.state),
			progress: strings.Join(j.progress, ","), working: j.state == "running" && j.reorg,
			paused: j.state == "paused" || j.state == "pausing"}, nil
	}
	return nil, nil
}

// indexShape is an index as information_schema.STATISTICS shows it.
type indexShape struct {
	name    string
	unique  bool
	typ     string // BTREE, FULLTEXT, SPATIAL, HASH, ...
	columns []source.IndexColumn
}

// targetIndexes reads the table's indexes, by lower-case name.
func targetIndexes(ctx context.Context, db *sql.DB, schema, table string) (map[string]*indexShape, error) {
	rows, err := db.QueryContext(ctx, `SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, INDEX_TYPE
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("indexes of %s.%s: %w", schema, table, err)
	}
	defer rows.Close()
	out := map[string]*indexShape{}
	for rows.Next() {
		var name, typ string
		var nonUnique int
		var col sql.NullString
		var sub sql.NullInt64
		if err := rows.Scan(&name, &nonUnique, &col, &sub, &typ); err != nil {
			return nil, fmt.Errorf("indexes of %s.%s: %w", schema, table, err)
		}
		ix := out[strings.ToLower(name)]
		if ix == nil {
			ix = &indexShape{name: name, unique: nonUnique == 0, typ: strings.ToUpper(typ)}
			out[strings.ToLower(name)] = ix
		}
		c := source.IndexColumn{Name: col.String, Prefix: int(sub.Int64)}
		if !col.Valid {
			c.Expr = "(expression)"
		}
		ix.columns = append(ix.columns, c)
	}
	return out, rows.Err()
}

// checkIndexes compares the target's indexes with the set recorded at
// plan time: each by name, uniqueness, kind and key parts. One missing,
// different or extra fails the table, naming it. Extra indexes are allowed
// only on a table with foreign keys, for which the server adds its own.
func (n *Node) checkIndexes(ctx context.Context, s meta.TableStep, rec meta.PlanTable) (string, error) {
	have, err := targetIndexes(ctx, n.target.DB(), s.DB, s.Table)
	if err != nil {
		return "", err
	}
	if bad := indexDiffs(rec.Indexes, have, rec.ForeignKeys, rec.IndexSource, nil); len(bad) > 0 {
		return "", &stepError{fmt.Errorf("table %s: its indexes differ from %s: %s", stepID(s.DB, s.Table), rec.IndexSource, strings.Join(bad, "; "))}
	}
	return fmt.Sprintf("%d index(es) as in %s", len(rec.Indexes), rec.IndexSource), nil
}

// indexDiffs says how the target's indexes (have) differ from want: each
// one missing (unless missingOK allows it), different, or extra (not in
// from; allowed on a table with foreign keys, for which the server may add
// its own).
func indexDiffs(want []source.Index, have map[string]*indexShape, foreignKeys int, from string, missingOK func(source.Index) bool) []string {
	var bad []string
	wanted := map[string]bool{}
	for _, ix := range want {
		key := strings.ToLower(ix.Name)
		wanted[key] = true
		got := have[key]
		if got == nil {
			if missingOK == nil || !missingOK(ix) {
				bad = append(bad, fmt.Sprintf("index %s is missing", quoteIdent(ix.Name)))
			}
			continue
		}
		if why := sameIndex(ix, got); why != "" {
			bad = append(bad, fmt.Sprintf("index %s %s", quoteIdent(ix.Name), why))
		}
	}
	if foreignKeys == 0 {
		var extra []string
		for key, got := range have {
			if !wanted[key] {
				extra = append(extra, quoteIdent(got.name))
			}
		}
		sort.Strings(extra)
		if len(extra) > 0 {
			bad = append(bad, "index(es) not in "+from+": "+strings.Join(extra, ", "))
		}
	}
	return bad
}

// sameIndex says how the target's index differs from the definition.
func sameIndex(ix source.Index, got *indexShape) string {
	unique := ix.Kind == source.IndexPrimary || ix.Kind == source.IndexUnique
	switch {
	case unique != got.unique:
		return fmt.Sprintf("is %s, want %s", uniqueness(got.unique), uniqueness(unique))
	case (ix.Kind == source.IndexFulltext || ix.Kind == source.IndexSpatial) && got.typ != ix.Kind:
		return fmt.Sprintf("is of type %s, want %s", got.typ, ix.Kind)
	case len(ix.Columns) != len(got.columns):
		return fmt.Sprintf("has %d key part(s), want %d", len(got.columns), len(ix.Columns))
	}
	for i, c := range ix.Columns {
		g := got.columns[i]
		if c.Expr != "" || g.Expr != "" {
			continue
		}
		// No prefix in the definition: the server may still store one
		// (MariaDB keys a BLOB or TEXT column by its first bytes).
		if !strings.EqualFold(c.Name, g.Name) || c.Prefix != g.Prefix && c.Prefix != 0 {
			return fmt.Sprintf("key part %d is %s(%d), want %s(%d)", i+1, g.Name, g.Prefix, c.Name, c.Prefix)
		}
	}
	return ""
}

func uniqueness(u bool) string {
	if u {
		return "unique"
	}
	return "non-unique"
}

// analyze runs ANALYZE TABLE and reports its message.
func (n *Node) analyze(ctx context.Context, s meta.TableStep) (string, error) {
	rows, err := n.target.DB().QueryContext(ctx, "ANALYZE TABLE "+quoteIdent(s.DB)+"."+quoteIdent(s.Table))
	if err != nil {
		return "", fmt.Errorf("analyze table %s: %w", stepID(s.DB, s.Table), err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var msgs []string
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		if len(vals) >= 4 {
			msgs = append(msgs, vals[2].String+": "+vals[3].String)
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("analyze table %s: %w", stepID(s.DB, s.Table), err)
	}
	return strings.Join(msgs, "; "), nil
}
