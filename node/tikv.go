package node

// TiDB as a target: the cluster's import state across the job's phases.
//
//   - prepare (leader): tikv.Plan reads what is to change and the values
//     found before; that goes under tikv/saved in the leader's fenced commit,
//     and only then does tikv.Apply switch every TiKV store to import mode
//     and pause PD's balance schedulers with a TTL. A leader that dies inside
//     Apply leaves nothing that tikv/saved does not name.
//   - import: a keeper, one node at a time (its own election), re-asserts
//     both with tikv.Keep before they expire, for as long as shards are in
//     work. Its node dying hands the keeper's election to the next node.
//   - finalize (leader): tikv.Restore puts back what tikv/saved says, for a
//     succeeded, failed or cancelled job alike; the barrier's tikv note says
//     what was restored, or that restoring failed.

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pingcap/log"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap/zapcore"

	"storm/election"
	"storm/import/tikv"
	"storm/meta"
)

// tikvKeeperElection names the keeper's election: job.ElectionName of it.
const tikvKeeperElection = "tikv-keeper"

// tikvPrepareFailure is the name under failed/ of a failed prepare: the
// job's failures are read from there by verify (which then skips) and by
// finalize (which fails the job with it).
const tikvPrepareFailure = "tikv-prepare"

// Bounds of the retries; tests shorten them.
var (
	// tikvPrepareRetry is how long the prepare leader retries a Prepare
	// that fails before it fails the phase, and with it the job.
	tikvPrepareRetry = 15 * time.Second
	// tikvRestoreRetry is how long finalize retries Restore before it gives
	// up and says so in the barrier, rather than hold the job forever.
	tikvRestoreRetry = 30 * time.Second
	// tikvBackoff is the first pause between attempts; it doubles up to
	// tikvMaxBackoff.
	tikvBackoff    = 500 * time.Millisecond
	tikvMaxBackoff = 5 * time.Second
)

var quietPDOnce sync.Once

// tikvConfig is import/tikv's configuration for the job's cluster. PD's
// HTTP API sees the node in the User-Agent, so its access log says which
// node paused or resumed what.
func (n *Node) tikvConfig() tikv.Config {
	// client-go's PD client logs every connection at INFO, and its own
	// shutdown at ERROR, through pingcap/log, a process-wide logger storm
	// does not otherwise use. Every failure that matters comes back as an
	// error from import/tikv, which storm logs with its context.
	quietPDOnce.Do(func() { log.SetLevel(zapcore.FatalLevel) })
	ts := n.spec.TiDB
	return tikv.Config{
		PDAddrs:         ts.PDAddrs,
		ImportMode:      ts.ImportMode,
		PauseSchedulers: ts.PauseSchedulers,
		PauseTTL:        time.Duration(ts.PauseTTL) * time.Second,
		HTTPClient:      &http.Client{Transport: userAgent{base: tikv.HTTPTransport(n.cfg.Security.TiDB), ua: "storm/" + n.cfg.NodeID}},
		TLS:             n.cfg.Security.TiDB, // node/security.go
	}
}

type userAgent struct {
	base http.RoundTripper
	ua   string
}

func (u userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.ua)
	return u.base.RoundTrip(r)
}

// TiKVPrepareSummary is the prepare phase's marker summary with PD set.
type TiKVPrepareSummary struct {
	PDAddrs    []string     `json:"pd_addrs"`
	Stores     []tikv.Store `json:"stores_in_import_mode,omitempty"`
	Schedulers []string     `json:"schedulers_paused,omitempty"`
	Config     []string     `json:"config_changed,omitempty"` // keys; their old values are in tikv/saved
	PauseTTL   string       `json:"pause_ttl"`
	KeepEvery  string       `json:"keep_every"`
	// Reused: a previous prepare leader had saved state already; what it
	// found before is kept, since this leader found its changes instead.
	Reused   bool `json:"reused_saved_state,omitempty"`
	Attempts int  `json:"attempts"`
}

// prepareTiKV is the prepare phase's work.
func (n *Node) prepareTiKV(ctx context.Context, l *election.Leader) (any, error) {
	if len(n.spec.TiDB.PDAddrs) == 0 {
		return map[string]string{"tikv": "not configured: no tidb.pd-addrs"}, nil
	}
	cfg := n.tikvConfig()
	prev, err := n.readSaved(ctx)
	if err != nil {
		return nil, err
	}
	saved := prev
	if prev != nil {
		n.log.Warn("a previous prepare leader saved TiKV state already; keeping what it found before", "saved_at", prev.At)
	}
	sum := TiKVPrepareSummary{PDAddrs: cfg.PDAddrs, Reused: prev != nil,
		PauseTTL: (time.Duration(n.spec.TiDB.PauseTTL) * time.Second).String(), KeepEvery: cfg.KeepInterval().String()}
	if n.spec.TiDB.PauseTTL == 0 {
		sum.PauseTTL = tikv.DefaultPauseTTL.String()
	}
	deadline := time.Now().Add(tikvPrepareRetry)
	backoff := tikvBackoff
	var perr error
	for {
		sum.Attempts++
		// Read, save, then change: what Apply may change is in etcd before
		// it happens, so whoever finalizes can put it back even if this
		// leader dies inside Apply.
		s, err := tikv.Plan(ctx, cfg)
		if err == nil {
			merged := mergeSaved(saved, s)
			saved = &merged
			if cerr := l.Commit(ctx, clientv3.OpPut(n.job.TiKVSaved(), meta.Encode(saved))); cerr != nil {
				return nil, fmt.Errorf("save TiKV state: %w", cerr)
			}
			err = tikv.Apply(ctx, cfg, s)
		}
		perr = err
		if err == nil || ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
			break
		}
		n.log.Warn("TiKV prepare failed; retrying", "attempt", sum.Attempts, "err", err)
		if !sleepCtx(ctx, backoff) {
			break
		}
		backoff = min(2*backoff, tikvMaxBackoff)
	}
	if ctx.Err() != nil {
		// Leadership lost: the next leader redoes the phase from tikv/saved.
		return nil, ctx.Err()
	}
	if saved == nil {
		// Plan never got through: nothing was changed or saved.
		saved = &tikv.Saved{}
	}
	sum.Stores, sum.Schedulers = saved.Stores, saved.Schedulers
	sum.Config = slices.Sorted(maps.Keys(saved.Config))
	if perr != nil {
		// Fail the job: the failure goes where verify and finalize read the
		// job's failures, so no shard is imported, verify skips, and
		// finalize restores what tikv/saved says and fails the job.
		f := meta.Failed{Shard: tikvPrepareFailure, Node: n.cfg.NodeID, At: time.Now().UTC(),
			Reason: fmt.Sprintf("prepare: TiKV import state could not be set after %d attempt(s), so no shard was imported: %v", sum.Attempts, perr)}
		if cerr := l.Commit(ctx, clientv3.OpPut(n.job.Failed(tikvPrepareFailure), meta.Encode(f))); cerr != nil {
			return nil, fmt.Errorf("record the TiKV prepare failure: %w", cerr)
		}
		n.log.Error("TiKV prepare failed; the job fails and finalize restores what was changed", "err", perr)
		return sum, election.Fail(fmt.Errorf("TiKV import state: %w", perr))
	}
	n.log.Info("TiKV in import state", "stores", len(saved.Stores), "schedulers_paused", saved.Schedulers,
		"pause_ttl", sum.PauseTTL, "keep_every", sum.KeepEvery)
	return sum, nil
}

// mergeSaved adds what a later Plan found to what an earlier one saved. The
// earlier one is the truth about the state before: the later one found the
// earlier one's changes (paused schedulers, merge switched off) and would
// save those as the "before". Only what the earlier one did not touch is
// taken from the later one; stores and schedulers are the union, since
// Restore must undo every change of either.
func mergeSaved(first *tikv.Saved, later tikv.Saved) tikv.Saved {
	if first == nil {
		return later
	}
	out := tikv.Saved{At: first.At, Stores: slices.Clone(first.Stores), Schedulers: slices.Clone(first.Schedulers)}
	if out.At.IsZero() {
		out.At = later.At
	}
	for _, st := range later.Stores {
		i := slices.IndexFunc(out.Stores, func(s tikv.Store) bool { return s.ID == st.ID })
		if i < 0 {
			out.Stores = append(out.Stores, st)
		} else {
			out.Stores[i] = st // the current address
		}
	}
	sort.Slice(out.Stores, func(i, j int) bool { return out.Stores[i].ID < out.Stores[j].ID })
	for _, name := range later.Schedulers {
		if !slices.Contains(out.Schedulers, name) {
			out.Schedulers = append(out.Schedulers, name)
		}
	}
	slices.Sort(out.Schedulers)
	if len(first.Config)+len(later.Config) > 0 {
		out.Config = maps.Clone(later.Config)
		if out.Config == nil {
			out.Config = map[string]any{}
		}
		maps.Copy(out.Config, first.Config)
	}
	return out
}

// readSaved reads tikv/saved; nil when prepare saved nothing.
func (n *Node) readSaved(ctx context.Context) (*tikv.Saved, error) {
	key := n.job.TiKVSaved()
	resp, err := n.cli.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	var s tikv.Saved
	if err := meta.Decode(key, resp.Kvs[0].Value, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// importIfPrepared runs the import unless the prepare phase failed; then
// the prepare leader has recorded the failure, and the job goes on to
// finalize, which restores the cluster and fails the job.
func (n *Node) importIfPrepared(ctx context.Context, sess *concurrency.Session) error {
	key := n.job.PhaseMarker(meta.PhasePrepare)
	resp, err := n.cli.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if len(resp.Kvs) > 0 {
		var m meta.PhaseMarker
		if err := meta.Decode(key, resp.Kvs[0].Value, &m); err != nil {
			return err
		}
		if m.Error != "" {
			n.log.Warn("prepare failed; not importing", "by", m.By, "err", m.Error)
			return nil
		}
	}
	return n.importShards(ctx, sess)
}

// keepWanted: shards are in work, or will be, and the job is going on.
// Once every shard is done or failed, or the job is stopping (a failed
// shard, a cancel, the barrier), nothing more is imported: import mode
// and the pause are no longer wanted, and finalize restores them.
func keepWanted(c counts) bool {
	return !c.stopping() && c.Claimed+c.Pending > 0
}

// keepTiKV re-asserts import mode and the scheduler pause while shards are
// in work. Every importing node runs it; the keeper's election makes one of
// them the keeper at a time, and hands the role on when that node dies. It
// returns when the work ends or ctx does; importShards does not wait for it.
func (n *Node) keepTiKV(ctx context.Context, sess *concurrency.Session, v *view[meta.Shard]) {
	ts := n.spec.TiDB
	if len(ts.PDAddrs) == 0 || (!ts.ImportMode && !ts.PauseSchedulers) {
		return
	}
	// A job that waits for a source's host (hours, maybe) holds no shard in
	// work: the keeper stands down, TiKV and PD lapse back to normal, and
	// the keeper comes back (keeping at once) when that host's shards are.
	for waitWanted(ctx, v) {
		n.keepWhileWanted(ctx, sess, v)
		// Not a busy loop when there was nothing to keep.
		if !sleepCtx(ctx, time.Second) {
			return
		}
	}
}

// waitWanted blocks until keeping is wanted (true), or the import settled
// or ctx ended (false).
func waitWanted(ctx context.Context, v *view[meta.Shard]) bool {
	for {
		v.mu.Lock()
		c := v.countsLocked()
		ch := v.changed
		v.mu.Unlock()
		switch {
		case keepWanted(c):
			return true
		case c.settled():
			return false
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// keepWhileWanted campaigns for the keeper election and, while leading,
// re-asserts the import state until it is no longer wanted.
func (n *Node) keepWhileWanted(ctx context.Context, sess *concurrency.Session, v *view[meta.Shard]) {
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		waitUnwanted(kctx, v)
		cancel()
	}()
	e := concurrency.NewElection(sess, n.job.ElectionName(tikvKeeperElection))
	// Campaign gives up its key when kctx ends before it wins.
	if err := e.Campaign(kctx, n.cfg.NodeID); err != nil {
		return
	}
	defer func() {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		_ = e.Resign(rctx)
	}()
	saved, err := n.readSaved(kctx)
	for err != nil && kctx.Err() == nil {
		n.log.Warn("tikv keeper: read saved state", "err", err)
		if !sleepCtx(kctx, time.Second) {
			return
		}
		saved, err = n.readSaved(kctx)
	}
	if saved == nil {
		if kctx.Err() == nil {
			n.log.Warn("tikv keeper: prepare saved no TiKV state; nothing to keep")
		}
		return
	}
	cfg := n.tikvConfig()
	every := cfg.KeepInterval()
	// Right after prepare, the first keep is due an interval after it; a
	// keeper taking over from a dead one can't know when that one last
	// kept, and keeps at once.
	wait := min(max(time.Until(saved.At.Add(every)), 0), every)
	n.log.Info("tikv keeper: leading", "keep_every", every, "first_in", wait.Round(time.Millisecond))
	for {
		if !sleepCtx(kctx, wait) || !keepWanted(v.snapshot()) {
			return
		}
		start := time.Now()
		if err := tikv.Keep(kctx, cfg, *saved); err != nil {
			if kctx.Err() != nil {
				return
			}
			n.log.Warn("tikv keeper: re-asserting import state failed; retrying", "err", err)
			wait = max(min(every/3, 5*time.Second), 100*time.Millisecond)
			continue
		}
		n.log.Info("tikv keeper: import state re-asserted", "stores", len(saved.Stores),
			"schedulers", len(saved.Schedulers), "took", time.Since(start).Round(time.Millisecond))
		wait = every
	}
}

// waitUnwanted returns once keepWanted no longer holds, or ctx ends.
func waitUnwanted(ctx context.Context, v *view[meta.Shard]) {
	for {
		v.mu.Lock()
		c := v.countsLocked()
		ch := v.changed
		v.mu.Unlock()
		if !keepWanted(c) {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// restoreTiKV is finalize's first step: put back what prepare changed, as
// tikv/saved says, and return the barrier's note about it.
//
// It is idempotent (a finalize leader that dies half-way is replaced by one
// that restores again) and bounded: if the cluster stays unreachable for
// tikvRestoreRetry, the note says "restore failed: ..." with what a DBA must
// put back by hand, and finalize writes the barrier all the same. The job's
// status stays what the import and verify made it: the data is what it
// is, and what was not restored but expires (the scheduler pause, TiKV's
// import mode) expires on its own within the pause TTL and TiKV's
// import-mode timeout.
func (n *Node) restoreTiKV(ctx context.Context, l *election.Leader) (string, error) {
	if len(n.spec.TiDB.PDAddrs) == 0 {
		return "", nil
	}
	saved, err := n.readSaved(ctx)
	if err != nil {
		return "", err
	}
	if saved == nil {
		return "nothing to restore: prepare changed nothing on the TiDB cluster", nil
	}
	n.waitKeepers(ctx)
	cfg := n.tikvConfig()
	deadline := time.Now().Add(tikvRestoreRetry)
	backoff := tikvBackoff
	for attempt := 1; ; attempt++ {
		err = tikv.Restore(ctx, cfg, *saved)
		if err == nil {
			note := "restored: " + describeSaved(*saved)
			n.log.Info("TiKV restored", "note", note, "attempts", attempt)
			return note, nil
		}
		if ctx.Err() != nil {
			// Leadership lost: the next finalize leader restores again.
			return "", ctx.Err()
		}
		if time.Now().Add(backoff).After(deadline) {
			note := fmt.Sprintf("restore failed after %d attempt(s) in %s: %v; to check and do by hand: %s",
				attempt, tikvRestoreRetry, err, manualRestore(*saved))
			n.log.Error("TiKV restore failed; the TiDB cluster needs a DBA", "note", note)
			return note, nil
		}
		n.log.Warn("TiKV restore failed; retrying", "attempt", attempt, "err", err)
		if !sleepCtx(ctx, backoff) {
			return "", ctx.Err()
		}
		backoff = min(2*backoff, tikvMaxBackoff)
	}
}

// waitKeepers waits, for at most a lease's lifetime and a little, until no
// keeper is left: a keep still on its way must not land after the restore.
// Keepers resign as soon as the import settles, and a dead node's keeper
// key goes with its lease.
func (n *Node) waitKeepers(ctx context.Context) {
	prefix := n.job.ElectionName(tikvKeeperElection) + "/"
	deadline := time.Now().Add(time.Duration(n.cfg.LeaseTTL)*time.Second + 2*time.Second)
	for {
		resp, err := n.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil || resp.Count == 0 {
			return
		}
		if time.Now().After(deadline) {
			n.log.Warn("a TiKV keeper is still registered; restoring anyway", "keepers", resp.Count)
			return
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return
		}
	}
}

// describeSaved says what Restore put back.
func describeSaved(s tikv.Saved) string {
	var parts []string
	if len(s.Stores) > 0 {
		ids := make([]string, len(s.Stores))
		for i, st := range s.Stores {
			ids[i] = fmt.Sprint(st.ID)
		}
		parts = append(parts, fmt.Sprintf("%d TiKV store(s) to normal mode (%s)", len(s.Stores), strings.Join(ids, ",")))
	}
	if len(s.Schedulers) > 0 {
		parts = append(parts, "resumed "+strings.Join(s.Schedulers, ","))
	}
	if len(s.Config) > 0 {
		parts = append(parts, "schedule config "+configText(s.Config, "="))
	}
	if len(parts) == 0 {
		return "nothing was changed"
	}
	return strings.Join(parts, "; ")
}

// manualRestore is what a DBA checks and runs when finalize could not
// restore: all that prepare changed, since Restore does not say which of
// its steps failed.
func manualRestore(s tikv.Saved) string {
	var steps []string
	for _, name := range s.Schedulers {
		steps = append(steps, "pd-ctl scheduler resume "+name)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Config)) {
		steps = append(steps, fmt.Sprintf("pd-ctl config set %s %v", k, s.Config[k]))
	}
	if len(s.Stores) > 0 {
		addrs := make([]string, len(s.Stores))
		for i, st := range s.Stores {
			addrs[i] = st.Address
		}
		steps = append(steps, fmt.Sprintf("switch TiKV %s to normal mode (tidb-lightning-ctl --switch-mode=normal; they also leave import mode on their own after import.import-mode-timeout, 10m by default)",
			strings.Join(addrs, ",")))
	}
	if len(steps) == 0 {
		return "nothing"
	}
	return strings.Join(steps, "; ")
}

func configText(m map[string]any, sep string) string {
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		kv = append(kv, fmt.Sprintf("%s%s%v", k, sep, m[k]))
	}
	return strings.Join(kv, ",")
}

// sleepCtx sleeps for d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
