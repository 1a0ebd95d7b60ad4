package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand"
	"sort"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
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
	// returned are items whose claim went away unfinished (a dead owner's,
	// or released): next offers them before the queue.
	returned []string
	// tally counts the items by state (done, failed, claimed, pending),
	// kept up to date by load and apply, so that next and snapshot cost
	// O(1) and not a walk over every item: with 100,000 shards and a
	// hundred nodes, every claim event would otherwise cost every waiting
	// worker of every node a pass over all of them.
	tally counts
	// order, when set, says which group an item belongs to (its table)
	// and how much work it is: next prefers items of the groups with the
	// fewest items in work, then the bigger ones. inWork counts the items
	// in work per group (claims the view has seen, and items next handed
	// out whose claim it has not seen yet: handed).
	order  func(T) (group string, weight int64)
	inWork map[string]int
	// open counts the items not done per group (with order): a table
	// whose count is 0 once every source is planned has all its shards
	// done, and its steps may start (node/steps.go).
	open    map[string]int
	handed  map[string]string // item -> group
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
	// more, when set, says more items may still come although every one
	// so far is done: next waits for them (the verify ranges that tables'
	// steps write while others still import).
	more func() bool

	// keepDone: the view folds every done record into doneSum (load reads
	// them, the watch's events carry them), and rev is the revision it has
	// applied, so the phases after the import need not read or decode
	// 100,000 records again (doneFold, doneRecords).
	keepDone bool
	doneSum  *doneFold
	rev      int64
}

func newView[T any](job meta.Job, pool meta.Pool, nodeID string, log *slog.Logger) *view[T] {
	h := fnv.New64a()
	h.Write([]byte(nodeID))
	return &view[T]{job: job, pool: pool, log: log, changed: make(chan struct{}), loaded: make(chan struct{}), seed: h.Sum64(),
		me: nodeID, planned: map[string]bool{}, claimable: func(T) bool { return true },
		order: itemOrder[T](), inWork: map[string]int{}, handed: map[string]string{}, open: map[string]int{}}
}

// itemOrder groups import shards and verify ranges by table. A shard weighs
// its bytes; a verify range without bounds (a whole table, read by one
// worker) weighs more than a bounded one, so that it starts first.
//
// Workers on different tables are cheaper for the target than workers on
// the same one (they share no index pages and latches), and the biggest
// items first leave the smallest for the end of the job, when workers run
// out of work one after another.
func itemOrder[T any]() func(T) (string, int64) {
	var zero T
	switch any(zero).(type) {
	case meta.Shard:
		return func(t T) (string, int64) {
			s := any(t).(meta.Shard)
			return s.DB + "." + s.Table, s.Bytes
		}
	case meta.VerifyRange:
		return func(t T) (string, int64) {
			r := any(t).(meta.VerifyRange)
			w := int64(1)
			if r.Lo == nil && r.Hi == nil {
				w = 2
			}
			return r.DB + "." + r.Table, w
		}
	}
	return nil
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
			// A first read that etcd failed for a moment (a cut link, a
			// leader change) or that a compaction overtook (it reads
			// page by page at one revision) is tried again like a later
			// one: the node's session outlives such a moment, and giving
			// up here would make the whole node join again. If etcd is
			// gone for good, the lost session ends ctx.
			if ctx.Err() != nil || first && !meta.Transient(ctx, err) && !errors.Is(err, rpctypes.ErrCompacted) {
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

// viewPage bounds the keys of one range read of the view: a job of
// 100,000 shards is read in pages rather than as one answer of tens of MB,
// which etcd would build whole in memory for every node that starts.
var viewPage int64 = 5000

// rangePages calls fn with every page of the keys under prefix at rev (0:
// the current revision, which it returns).
func rangePages(ctx context.Context, cli *clientv3.Client, prefix string, rev int64, keysOnly bool, fn func([]*mvccpb.KeyValue) error) (int64, error) {
	end := clientv3.GetPrefixRangeEnd(prefix)
	from := prefix
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(viewPage)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		if keysOnly {
			opts = append(opts, clientv3.WithKeysOnly())
		}
		r, err := cli.Get(ctx, from, opts...)
		if err != nil {
			return 0, err
		}
		if rev == 0 {
			rev = r.Header.Revision
		}
		if err := fn(r.Kvs); err != nil {
			return 0, err
		}
		if !r.More || len(r.Kvs) == 0 {
			return rev, nil
		}
		from = string(r.Kvs[len(r.Kvs)-1].Key) + "\x00"
	}
}

// load reads every kind the view needs at one revision.
func (v *view[T]) load(ctx context.Context, cli *clientv3.Client) (int64, error) {
	shards := map[string]T{}
	rev, err := rangePages(ctx, cli, v.job.Dir(v.pool.Items), 0, false, func(kvs []*mvccpb.KeyValue) error {
		for _, kv := range kvs {
			var s T
			if err := meta.Decode(string(kv.Key), kv.Value, &s); err != nil {
				return err
			}
			if k, ok := v.job.Parse(string(kv.Key)); ok {
				shards[k.Name] = s
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read shards: %w", err)
	}
	keysOnly := func(k meta.Kind) ([]string, error) {
		var names []string
		_, err := rangePages(ctx, cli, v.job.Dir(k), rev, true, func(kvs []*mvccpb.KeyValue) error {
			for _, kv := range kvs {
				if key, ok := v.job.Parse(string(kv.Key)); ok {
					names = append(names, key.Name)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		return names, nil
	}
	var claims []*mvccpb.KeyValue
	if _, err := rangePages(ctx, cli, v.job.Dir(v.pool.Claims), rev, false, func(kvs []*mvccpb.KeyValue) error {
		claims = append(claims, kvs...)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("read claims: %w", err)
	}
	var done []string
	var doneSum *doneFold
	if v.keepDone {
		doneSum = newDoneFold()
		_, err = rangePages(ctx, cli, v.job.Dir(v.pool.Done), rev, false, func(kvs []*mvccpb.KeyValue) error {
			for _, kv := range kvs {
				if key, ok := v.job.Parse(string(kv.Key)); ok {
					done = append(done, key.Name)
					if err := doneSum.addRaw(string(kv.Key), kv.Value); err != nil {
						doneSum.breakOff("%v", err)
					}
				}
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", v.pool.Done, err)
		}
	} else if done, err = keysOnly(v.pool.Done); err != nil {
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
	v.shards = shards
	v.claims = map[string]string{}
	v.done = map[string]bool{}
	v.failed = map[string]bool{}
	for _, kv := range claims {
		v.putClaim(string(kv.Key), kv.Value)
	}
	for _, id := range done {
		v.done[id] = true
	}
	v.doneSum, v.rev = doneSum, rev
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
	v.tally = counts{}
	v.inWork, v.handed, v.open = map[string]int{}, map[string]string{}, map[string]int{}
	v.returned = v.returned[:0]
	v.queue = v.queue[:0]
	for id := range v.shards {
		v.queue = append(v.queue, id)
		v.tallyItem(id, 1)
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
	if node, ok := claimOwner(val); ok {
		v.claims[k.Name] = node
		return
	}
	var c meta.Claim
	if err := meta.Decode(key, val, &c); err != nil {
		v.log.Warn("unreadable claim", "key", key, "err", err)
	}
	v.claims[k.Name] = c.Node
}

// claimOwner reads the node out of a claim as meta.Encode writes it,
// {"node":"<id>",...}, when the id needs no JSON escape; ok is false
// otherwise and the caller decodes it. Every node sees every claim, and at
// 100,000 shards decoding each one whole was a good part of the watch's
// work.
func claimOwner(val []byte) (string, bool) {
	const prefix = `{"node":"`
	if !bytes.HasPrefix(val, []byte(prefix)) {
		return "", false
	}
	rest := val[len(prefix):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return "", false
	}
	return string(rest[:end]), true
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
		if resp.Header.Revision > v.rev {
			v.rev = resp.Header.Revision
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
	case v.pool.Items, v.pool.Claims, v.pool.Done, v.pool.Failed:
		v.tallyItem(k.Name, -1)
		defer v.tallyItem(k.Name, 1)
		v.unhand(k.Name)
	}
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
			// Back in the pool unless it finished (a completion deletes
			// the claim in the Txn that writes done/, whose event came
			// first): a dead owner's shard, or one handed back. It goes
			// ahead of the queue: it may be half written, and a takeover
			// should not wait for the rest of the job.
			if !v.done[k.Name] && !v.failed[k.Name] {
				v.returned = append(v.returned, k.Name)
			}
			return
		}
		v.putClaim(key, ev.Kv.Value)
	case v.pool.Done:
		if v.keepDone {
			switch {
			case del:
				v.doneSum.breakOff("done record %s deleted", k.Name)
			case v.done[k.Name]:
				v.doneSum.breakOff("done record %s written twice", k.Name)
			default:
				if err := v.doneSum.addRaw(key, ev.Kv.Value); err != nil {
					v.doneSum.breakOff("%v", err)
				}
			}
		}
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

// doneRecords is the view's fold of the done records (keepDone) and the
// revision it is complete at.
func (v *view[T]) doneRecords() (*doneFold, int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.doneSum == nil {
		f := newDoneFold()
		f.breakOff("the view kept no done records")
		return f, v.rev
	}
	return v.doneSum.clone(), v.rev
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

// tallyItem adds d to the tally of item id's state (nothing for an id with
// no definition). Callers hold mu and call it with -1 before and +1 after
// they change what the view knows of the item.
func (v *view[T]) tallyItem(id string, d int) {
	s, ok := v.shards[id]
	if !ok {
		return
	}
	c := &v.tally
	c.Shards += d
	if v.order != nil && !v.done[id] {
		g, _ := v.order(s)
		v.open[g] += d
	}
	switch {
	case v.done[id]:
		c.Done += d
	case v.failed[id]:
		c.Failed += d
	case v.claims[id] != "":
		c.Claimed += d
		if v.claims[id] == v.me {
			c.ClaimedByMe += d
		}
		if v.order != nil {
			g, _ := v.order(s)
			v.inWork[g] += d
		}
	default:
		c.Pending += d
		if v.claimable(s) {
			c.ClaimablePending += d
		}
	}
}

func (v *view[T]) countsLocked() counts {
	c := v.tally
	c.Cancel, c.Barrier, c.PlanFailed = v.cancel, v.barrier, v.planFailed
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
		if id, s, ok := v.pickLocked(); ok {
			v.mu.Unlock()
			return id, s, true
		}
		c := v.countsLocked()
		ch := v.changed
		v.mu.Unlock()
		if (c.Done+c.Failed == c.Shards && c.SourcesWaiting == 0 && (v.more == nil || !v.more())) || (v.idleExit && c.idle()) {
			return "", zero, false
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", zero, false
		}
	}
}

// pickWindow is how many candidates at the head of the queue next weighs.
const pickWindow = 32

// pickLocked takes an item to claim off the queue: without an order the
// first claimable one; with one, of the first pickWindow claimable ones
// the one whose group has the fewest items in work, the heaviest among
// those. Peers walk the queue in different orders, so they still rarely
// pick the same item. Callers hold mu.
func (v *view[T]) pickLocked() (string, T, bool) {
	var zero T
	claimable := func(id string) (T, bool) {
		s, ok := v.shards[id]
		return s, ok && !v.done[id] && !v.failed[id] && v.claims[id] == "" && v.handed[id] == "" && v.claimable(s)
	}
	for len(v.returned) > 0 {
		id := v.returned[0]
		v.returned = v.returned[1:]
		if s, ok := claimable(id); ok {
			if v.order != nil {
				g, _ := v.order(s)
				v.handed[id] = g
				v.inWork[g]++
			}
			return id, s, true
		}
	}
	if v.order == nil {
		for len(v.queue) > 0 {
			id := v.queue[0]
			v.queue = v.queue[1:]
			if s, ok := claimable(id); ok {
				return id, s, true
			}
		}
		return "", zero, false
	}
	// The head of the queue: up to pickWindow candidates, and the items
	// passed over on the way, which are dropped (done, failed, in work or
	// not this node's: apply queues an item again if it is ever claimable
	// again). O(pickWindow) per pick, whatever the queue's length.
	var cands [pickWindow]string
	n, i := 0, 0
	for ; i < len(v.queue) && n < pickWindow; i++ {
		if _, ok := claimable(v.queue[i]); ok {
			cands[n] = v.queue[i]
			n++
		}
	}
	v.queue = v.queue[i-n:]
	copy(v.queue, cands[:n])
	if n == 0 {
		return "", zero, false
	}
	best, bestLoad, bestWeight := 0, 0, int64(0)
	for k, id := range cands[:n] {
		g, w := v.order(v.shards[id])
		if load := v.inWork[g]; k == 0 || load < bestLoad || load == bestLoad && w > bestWeight {
			best, bestLoad, bestWeight = k, load, w
		}
	}
	v.queue[0], v.queue[best] = v.queue[best], v.queue[0]
	id := v.queue[0]
	v.queue = v.queue[1:]
	s := v.shards[id]
	g, _ := v.order(s)
	v.handed[id] = g
	v.inWork[g]++
	return id, s, true
}

// unhand forgets that next handed id out, once an event about it shows
// whether it was claimed. Callers hold mu.
func (v *view[T]) unhand(id string) {
	if g, ok := v.handed[id]; ok {
		delete(v.handed, id)
		v.inWork[g]--
	}
}

// groupDone says whether every item of a group (a table's shards) is
// done, with every source planned and the pool not stopping.
func (v *view[T]) groupDone(g string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	c := v.countsLocked()
	return !c.stopping() && c.SourcesWaiting == 0 && v.open[g] == 0
}

// tableSums are what the done records say of a table: its rows and the
// columns its digest covers (or why it can only be counted); ok is false
// when the view keeps no usable sum of them.
func (v *view[T]) tableSums(db, table string) (rows int64, cols []string, note string, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.doneSum == nil || v.doneSum.broken != "" {
		return 0, nil, "", false
	}
	if t := v.doneSum.tables[db+"."+table]; t != nil {
		rows = t.rows
	}
	cols, note = v.doneSum.digestColumns(db, table)
	return rows, cols, note, true
}

// changes is the channel the next change closes.
func (v *view[T]) changes() <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.changed
}

// poke wakes everyone waiting on the view: another view they also depend
// on changed.
func (v *view[T]) poke() {
	v.mu.Lock()
	v.notify()
	v.mu.Unlock()
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
