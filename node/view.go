package node

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand"
	"sort"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/meta"
)

// view is a node's local picture of a pool's items (the import shards, or
// the verify ranges): one range read, then a watch, so picking an item to
// claim costs no etcd request. A watch that hits a compacted revision
// re-reads.
type view[T any] struct {
	job  meta.Job
	pool meta.Pool
	log  *slog.Logger

	mu      sync.Mutex
	shards  map[string]T
	claims  map[string]string // shard -> owner node
	done    map[string]bool
	failed  map[string]bool
	cancel  bool
	barrier bool
	queue   []string // candidates to claim, in this node's order
	changed chan struct{}
	loaded  chan struct{}
	seed    uint64

	// For the import pool: the declared sources, which of them are
	// planned, and which items this node may claim (a node-local source's
	// shards only by its node).
	me         string
	sources    []meta.SourceDir
	planned    map[string]bool
	planFailed bool
	claimable  func(T) bool
	// idleExit: next gives up once this node's sources are planned and it
	// can claim nothing more (node.exit-when-idle).
	idleExit bool
}

func newView[T any](job meta.Job, pool meta.Pool, nodeID string, log *slog.Logger) *view[T] {
	h := fnv.New64a()
	h.Write([]byte(nodeID))
	return &view[T]{job: job, pool: pool, log: log, changed: make(chan struct{}), loaded: make(chan struct{}), seed: h.Sum64(),
		me: nodeID, planned: map[string]bool{}, claimable: func(T) bool { return true }}
}

// withSources makes the view wait for every declared source to be planned
// and hand out only the items claimable says this node may take.
func (v *view[T]) withSources(sources []meta.SourceDir, claimable func(T) bool) *view[T] {
	v.sources, v.claimable = sources, claimable
	return v
}

// start runs the view in the background and returns once it has read the
// pool once; stop ends it.
func (v *view[T]) start(ctx context.Context, cli *clientv3.Client) (stop func(), err error) {
	vctx, cancel := context.WithCancel(ctx)
	viewErr := make(chan error, 1)
	go func() { viewErr <- v.run(vctx, cli) }()
	select {
	case <-v.loaded:
		return cancel, nil
	case err := <-viewErr:
		cancel()
		return nil, err
	}
}

// run keeps the view current until ctx ends. Its callers look at its error
// only until the first read is done, so from then on it never gives up on
// its own: a view that stopped would freeze, and its node would wait forever
// for shards it can no longer see finish. A watch that ends re-reads: one
// that hit a compacted revision at once, one cancelled otherwise (a member
// that lost its leader for a few election timeouts cancels the watches
// that require one) after a pause. A failed re-read is retried; if etcd is
// gone for good, the lost session ends ctx.
func (v *view[T]) run(ctx context.Context, cli *clientv3.Client) error {
	first := true
	pause := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		rev, err := v.load(ctx, cli)
		if err != nil {
			if first || ctx.Err() != nil {
				return err
			}
			v.log.Warn("shard view re-read failed; retrying", "err", err)
			if !pause(time.Second) {
				return ctx.Err()
			}
			continue
		}
		if first {
			close(v.loaded)
			first = false
		}
		err = v.watch(ctx, cli, rev)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			v.log.Warn("shard view watch compacted; re-reading", "rev", rev)
			continue
		}
		v.log.Warn("shard view watch ended; re-reading", "rev", rev, "err", err)
		if !pause(500 * time.Millisecond) {
			return ctx.Err()
		}
	}
}

// load reads every kind the view needs at one revision.
func (v *view[T]) load(ctx context.Context, cli *clientv3.Client) (int64, error) {
	shards, err := cli.Get(ctx, v.job.Dir(v.pool.Items), clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("read shards: %w", err)
	}
	rev := shards.Header.Revision
	keysOnly := func(k meta.Kind) ([]string, error) {
		r, err := cli.Get(ctx, v.job.Dir(k), clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithRev(rev))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		var names []string
		for _, kv := range r.Kvs {
			if key, ok := v.job.Parse(string(kv.Key)); ok {
				names = append(names, key.Name)
			}
		}
		return names, nil
	}
	claims, err := cli.Get(ctx, v.job.Dir(v.pool.Claims), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return 0, fmt.Errorf("read claims: %w", err)
	}
	done, err := keysOnly(v.pool.Done)
	if err != nil {
		return 0, err
	}
	failed, err := keysOnly(v.pool.Failed)
	if err != nil {
		return 0, err
	}
	singles, err := cli.Txn(ctx).Then(
		clientv3.OpGet(v.job.Cancel(), clientv3.WithKeysOnly(), clientv3.WithRev(rev)),
		clientv3.OpGet(v.job.Barrier(), clientv3.WithKeysOnly(), clientv3.WithRev(rev)),
		clientv3.OpGet(v.job.Dir(meta.KindPhase), clientv3.WithPrefix(), clientv3.WithRev(rev)),
	).Commit()
	if err != nil {
		return 0, fmt.Errorf("read cancel and barrier: %w", err)
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	v.shards = map[string]T{}
	v.claims = map[string]string{}
	v.done = map[string]bool{}
	v.failed = map[string]bool{}
	for _, kv := range shards.Kvs {
		var s T
		if err := meta.Decode(string(kv.Key), kv.Value, &s); err != nil {
			return 0, err
		}
		if k, ok := v.job.Parse(string(kv.Key)); ok {
			v.shards[k.Name] = s
		}
	}
	for _, kv := range claims.Kvs {
		v.putClaim(string(kv.Key), kv.Value)
	}
	for _, id := range done {
		v.done[id] = true
	}
	for _, id := range failed {
		v.failed[id] = true
	}
	v.cancel = len(singles.Responses[0].GetResponseRange().Kvs) > 0
	v.barrier = len(singles.Responses[1].GetResponseRange().Kvs) > 0
	v.planned, v.planFailed = map[string]bool{}, false
	for _, kv := range singles.Responses[2].GetResponseRange().Kvs {
		if k, ok := v.job.Parse(string(kv.Key)); ok {
			v.putPhase(k.Name, kv.Value)
		}
	}
	v.queue = v.queue[:0]
	for id := range v.shards {
		v.queue = append(v.queue, id)
	}
	// Peers walk the shards in different orders so that they rarely race
	// for the same claim.
	sort.Strings(v.queue)
	rand.New(rand.NewSource(int64(v.seed))).Shuffle(len(v.queue), func(i, j int) { v.queue[i], v.queue[j] = v.queue[j], v.queue[i] })
	v.notify()
	return rev, nil
}

func (v *view[T]) putClaim(key string, val []byte) {
	k, ok := v.job.Parse(key)
	if !ok {
		return
	}
	var c meta.Claim
	if err := meta.Decode(key, val, &c); err != nil {
		v.log.Warn("unreadable claim", "key", key, "err", err)
	}
	v.claims[k.Name] = c.Node
}

func (v *view[T]) watch(ctx context.Context, cli *clientv3.Client, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range cli.Watch(wctx, v.job.Root(), clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := resp.Err(); err != nil {
			return err
		}
		v.mu.Lock()
		for _, ev := range resp.Events {
			v.apply(ev)
		}
		v.notify()
		v.mu.Unlock()
	}
	return ctx.Err()
}

func (v *view[T]) apply(ev *clientv3.Event) {
	key := string(ev.Kv.Key)
	k, ok := v.job.Parse(key)
	if !ok {
		return
	}
	del := ev.Type == clientv3.EventTypeDelete
	switch k.Kind {
	case v.pool.Items:
		if del {
			delete(v.shards, k.Name)
			return
		}
		var s T
		if err := meta.Decode(key, ev.Kv.Value, &s); err == nil {
			if _, known := v.shards[k.Name]; !known {
				v.queue = append(v.queue, k.Name)
			}
			v.shards[k.Name] = s
		}
	case v.pool.Claims:
		if del {
			delete(v.claims, k.Name)
			// Back in the pool unless it finished: a dead owner's shard.
			v.queue = append(v.queue, k.Name)
			return
		}
		v.putClaim(key, ev.Kv.Value)
	case v.pool.Done:
		v.done[k.Name] = !del
	case v.pool.Failed:
		v.failed[k.Name] = !del
	case meta.KindPhase:
		if !del {
			v.putPhase(k.Name, ev.Kv.Value)
		}
	case meta.KindCancel:
		v.cancel = !del
	case meta.KindBarrier:
		v.barrier = !del
	}
}

// putPhase notes a planned source, and a failed plan (which stops the job).
func (v *view[T]) putPhase(name string, val []byte) {
	src, isSource := meta.SourceOfPhase(name)
	if !isSource && name != string(meta.PhasePlan) {
		return
	}
	var m meta.PhaseMarker
	if err := meta.Decode(name, val, &m); err != nil {
		return
	}
	if m.Error != "" {
		v.planFailed = true
	}
	if isSource {
		v.planned[src] = true
	}
}

// notify wakes everyone waiting for a change. Callers hold mu.
func (v *view[T]) notify() {
	close(v.changed)
	v.changed = make(chan struct{})
}

// counts is a snapshot of the shard set.
type counts struct {
	Shards, Done, Failed, Claimed, Pending int
	Cancel, Barrier, PlanFailed            bool
	// SourcesWaiting are declared sources not planned yet (MineWaiting of
	// them this node's to plan); ClaimablePending are pending items this
	// node may claim.
	SourcesWaiting, MineWaiting, ClaimablePending int
	// ClaimedByMe are items the view still shows claimed by this node.
	ClaimedByMe int
}

func (v *view[T]) snapshot() counts {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.countsLocked()
}

func (v *view[T]) countsLocked() counts {
	c := counts{Shards: len(v.shards), Cancel: v.cancel, Barrier: v.barrier, PlanFailed: v.planFailed}
	for id, s := range v.shards {
		switch {
		case v.done[id]:
			c.Done++
		case v.failed[id]:
			c.Failed++
		case v.claims[id] != "":
			c.Claimed++
			if v.claims[id] == v.me {
				c.ClaimedByMe++
			}
		default:
			c.Pending++
			if v.claimable(s) {
				c.ClaimablePending++
			}
		}
	}
	for _, src := range v.sources {
		if !v.planned[src.ID] {
			c.SourcesWaiting++
			if src.Readable(v.me) {
				c.MineWaiting++
			}
		}
	}
	return c
}

// idle: this node has nothing of its own left to plan or claim.
func (c counts) idle() bool { return c.MineWaiting == 0 && c.ClaimablePending == 0 }

// stopping: the job will not succeed, so no new shard is started.
func (c counts) stopping() bool { return c.Cancel || c.Failed > 0 || c.Barrier || c.PlanFailed }

// settled: no shard is in work and none will be started.
func (c counts) settled() bool {
	if c.stopping() {
		return c.Claimed == 0
	}
	return c.Done+c.Failed == c.Shards && c.SourcesWaiting == 0
}

// next blocks until there is a shard this node may try to claim, and returns
// it; ok is false once the import is settled or stopping.
func (v *view[T]) next(ctx context.Context) (string, T, bool) {
	var zero T
	for {
		v.mu.Lock()
		if v.countsLocked().stopping() {
			v.mu.Unlock()
			return "", zero, false
		}
		for len(v.queue) > 0 {
			id := v.queue[0]
			v.queue = v.queue[1:]
			s, ok := v.shards[id]
			if ok && !v.done[id] && !v.failed[id] && v.claims[id] == "" && v.claimable(s) {
				v.mu.Unlock()
				return id, s, true
			}
		}
		c := v.countsLocked()
		ch := v.changed
		v.mu.Unlock()
		if (c.Done+c.Failed == c.Shards && c.SourcesWaiting == 0) || (v.idleExit && c.idle()) {
			return "", zero, false
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", zero, false
		}
	}
}

// waitOwnClaimsGone blocks until the view has seen every claim of this
// node end: its workers' last completions reach it through the watch, a
// moment after they commit.
func (v *view[T]) waitOwnClaimsGone(ctx context.Context) (counts, error) {
	for {
		v.mu.Lock()
		c := v.countsLocked()
		ch := v.changed
		v.mu.Unlock()
		if c.ClaimedByMe == 0 {
			return c, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return c, ctx.Err()
		}
	}
}

// waitSettled blocks until no shard is in work and none will be started.
func (v *view[T]) waitSettled(ctx context.Context) (counts, error) {
	for {
		v.mu.Lock()
		c := v.countsLocked()
		ch := v.changed
		v.mu.Unlock()
		if c.settled() {
			return c, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return c, ctx.Err()
		}
	}
}
