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

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/meta"
)

// view is a node's local picture of the job's shard set: one range read,
// then a watch, so picking a shard to claim costs no etcd request. A watch
// that hits a compacted revision re-reads.
type view struct {
	job meta.Job
	log *slog.Logger

	mu      sync.Mutex
	shards  map[string]meta.Shard
	claims  map[string]string // shard -> owner node
	done    map[string]bool
	failed  map[string]bool
	cancel  bool
	barrier bool
	queue   []string // candidates to claim, in this node's order
	changed chan struct{}
	loaded  chan struct{}
	seed    uint64
}

func newView(job meta.Job, nodeID string, log *slog.Logger) *view {
	h := fnv.New64a()
	h.Write([]byte(nodeID))
	return &view{job: job, log: log, changed: make(chan struct{}), loaded: make(chan struct{}), seed: h.Sum64()}
}

// run keeps the view current until ctx ends.
func (v *view) run(ctx context.Context, cli *clientv3.Client) error {
	first := true
	for {
		rev, err := v.load(ctx, cli)
		if err != nil {
			return err
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
		if err != nil {
			return err
		}
	}
}

// load reads every kind the view needs at one revision.
func (v *view) load(ctx context.Context, cli *clientv3.Client) (int64, error) {
	shards, err := cli.Get(ctx, v.job.Dir(meta.KindShards), clientv3.WithPrefix())
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
	claims, err := cli.Get(ctx, v.job.Dir(meta.KindClaims), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return 0, fmt.Errorf("read claims: %w", err)
	}
	done, err := keysOnly(meta.KindDone)
	if err != nil {
		return 0, err
	}
	failed, err := keysOnly(meta.KindFailed)
	if err != nil {
		return 0, err
	}
	singles, err := cli.Txn(ctx).Then(
		clientv3.OpGet(v.job.Cancel(), clientv3.WithKeysOnly(), clientv3.WithRev(rev)),
		clientv3.OpGet(v.job.Barrier(), clientv3.WithKeysOnly(), clientv3.WithRev(rev)),
	).Commit()
	if err != nil {
		return 0, fmt.Errorf("read cancel and barrier: %w", err)
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	v.shards = map[string]meta.Shard{}
	v.claims = map[string]string{}
	v.done = map[string]bool{}
	v.failed = map[string]bool{}
	for _, kv := range shards.Kvs {
		var s meta.Shard
		if err := meta.Decode(string(kv.Key), kv.Value, &s); err != nil {
			return 0, err
		}
		v.shards[s.ID] = s
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

func (v *view) putClaim(key string, val []byte) {
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

func (v *view) watch(ctx context.Context, cli *clientv3.Client, rev int64) error {
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

func (v *view) apply(ev *clientv3.Event) {
	key := string(ev.Kv.Key)
	k, ok := v.job.Parse(key)
	if !ok {
		return
	}
	del := ev.Type == clientv3.EventTypeDelete
	switch k.Kind {
	case meta.KindShards:
		if del {
			delete(v.shards, k.Name)
			return
		}
		var s meta.Shard
		if err := meta.Decode(key, ev.Kv.Value, &s); err == nil {
			if _, known := v.shards[s.ID]; !known {
				v.queue = append(v.queue, s.ID)
			}
			v.shards[s.ID] = s
		}
	case meta.KindClaims:
		if del {
			delete(v.claims, k.Name)
			// Back in the pool unless it finished: a dead owner's shard.
			v.queue = append(v.queue, k.Name)
			return
		}
		v.putClaim(key, ev.Kv.Value)
	case meta.KindDone:
		v.done[k.Name] = !del
	case meta.KindFailed:
		v.failed[k.Name] = !del
	case meta.KindCancel:
		v.cancel = !del
	case meta.KindBarrier:
		v.barrier = !del
	}
}

// notify wakes everyone waiting for a change. Callers hold mu.
func (v *view) notify() {
	close(v.changed)
	v.changed = make(chan struct{})
}

// counts is a snapshot of the shard set.
type counts struct {
	Shards, Done, Failed, Claimed, Pending int
	Cancel, Barrier                        bool
}

func (v *view) snapshot() counts {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.countsLocked()
}

func (v *view) countsLocked() counts {
	c := counts{Shards: len(v.shards), Cancel: v.cancel, Barrier: v.barrier}
	for id := range v.shards {
		switch {
		case v.done[id]:
			c.Done++
		case v.failed[id]:
			c.Failed++
		case v.claims[id] != "":
			c.Claimed++
		default:
			c.Pending++
		}
	}
	return c
}

// stopping: the job will not succeed, so no new shard is started.
func (c counts) stopping() bool { return c.Cancel || c.Failed > 0 || c.Barrier }

// settled: no shard is in work and none will be started.
func (c counts) settled() bool {
	if c.stopping() {
		return c.Claimed == 0
	}
	return c.Done+c.Failed == c.Shards
}

// next blocks until there is a shard this node may try to claim, and returns
// it; ok is false once the import is settled or stopping.
func (v *view) next(ctx context.Context) (meta.Shard, bool) {
	for {
		v.mu.Lock()
		if v.countsLocked().stopping() {
			v.mu.Unlock()
			return meta.Shard{}, false
		}
		for len(v.queue) > 0 {
			id := v.queue[0]
			v.queue = v.queue[1:]
			s, ok := v.shards[id]
			if ok && !v.done[id] && !v.failed[id] && v.claims[id] == "" {
				v.mu.Unlock()
				return s, true
			}
		}
		c := v.countsLocked()
		ch := v.changed
		v.mu.Unlock()
		if c.Done+c.Failed == c.Shards {
			return meta.Shard{}, false
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return meta.Shard{}, false
		}
	}
}

// waitSettled blocks until no shard is in work and none will be started.
func (v *view) waitSettled(ctx context.Context) (counts, error) {
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
