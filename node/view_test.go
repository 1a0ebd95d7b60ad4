package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storm/internal/etcdserver"
	"storm/meta"
)

// slowCounts is what the view's tally must equal: a walk over every item.
func (v *view[T]) slowCounts() counts {
	var c counts
	c.Shards = len(v.shards)
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
	return c
}

func tallyOf(c counts) [7]int {
	return [7]int{c.Shards, c.Done, c.Failed, c.Claimed, c.Pending, c.ClaimablePending, c.ClaimedByMe}
}

// The view reads its items in pages at one revision, and keeps its tally
// equal to a count over every item whatever events arrive.
func TestViewPagesAndTally(t *testing.T) {
	_, cli := etcdserver.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	job, _ := meta.NewJob("/storm", "view-tally")
	defer func(p int64) { viewPage = p }(viewPage)
	viewPage = 7

	const n = 50
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("s%02d", i)
		s := meta.Shard{ID: id, Source: []string{"a", "b"}[i%2]}
		if _, err := cli.Put(ctx, job.Shard(id), meta.Encode(s)); err != nil {
			t.Fatal(err)
		}
		switch i % 5 {
		case 1:
			_, err := cli.Put(ctx, job.Claim(id), meta.Encode(meta.Claim{Node: "x"}))
			if err != nil {
				t.Fatal(err)
			}
		case 2:
			if _, err := cli.Put(ctx, job.Done(id), "{}"); err != nil {
				t.Fatal(err)
			}
		case 3:
			if _, err := cli.Put(ctx, job.Failed(id), "{}"); err != nil {
				t.Fatal(err)
			}
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	v := newView[meta.Shard](job, meta.ImportPool, "me", log).withSources(nil, func(s meta.Shard) bool { return s.Source == "a" })
	if _, err := v.load(ctx, cli); err != nil {
		t.Fatal(err)
	}
	if len(v.shards) != n || tallyOf(v.tally) != tallyOf(v.slowCounts()) {
		t.Fatalf("after load: %d shards, tally %+v, want %+v", len(v.shards), tallyOf(v.tally), tallyOf(v.slowCounts()))
	}
	if c := v.snapshot(); c.Done != 10 || c.Failed != 10 || c.Claimed != 10 || c.Pending != 20 || c.ClaimablePending != 10 {
		t.Fatalf("after load: %+v", c)
	}

	// Random events, applied as the watch applies them.
	r := rand.New(rand.NewPCG(3, 4))
	kinds := []meta.Kind{meta.KindShards, meta.KindClaims, meta.KindDone, meta.KindFailed}
	for i := 0; i < 5000; i++ {
		id := fmt.Sprintf("s%02d", r.IntN(n+10))
		k := kinds[r.IntN(len(kinds))]
		ev := &clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: []byte(job.Key(k, id))}}
		switch {
		case r.IntN(3) == 0:
			ev.Type = clientv3.EventTypeDelete
		case k == meta.KindShards:
			ev.Kv.Value = []byte(meta.Encode(meta.Shard{ID: id, Source: []string{"a", "b"}[r.IntN(2)]}))
		case k == meta.KindClaims:
			ev.Kv.Value = []byte(meta.Encode(meta.Claim{Node: []string{"y", "me"}[r.IntN(2)]}))
		default:
			ev.Kv.Value = []byte("{}")
		}
		v.mu.Lock()
		v.apply(ev)
		got, want := tallyOf(v.tally), tallyOf(v.slowCounts())
		inWork := map[string]int{}
		for id, s := range v.shards {
			if !v.done[id] && !v.failed[id] && v.claims[id] != "" {
				inWork[s.DB+"."+s.Table]++
			}
		}
		for g, n := range v.inWork {
			if n != inWork[g] {
				t.Fatalf("after event %d: %d in work in %q, want %d", i, n, g, inWork[g])
			}
		}
		v.mu.Unlock()
		if got != want {
			t.Fatalf("after event %d (%v %s): tally %v, want %v", i, ev.Type, ev.Kv.Key, got, want)
		}
	}
}

// Through the watch: a Txn's events (done/ put, claims/ delete) share one
// revision and all apply.
func TestViewWatchAppliesTxns(t *testing.T) {
	_, cli := etcdserver.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	job, _ := meta.NewJob("/storm", "view-watch")
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("s%d", i)
		if _, err := cli.Put(ctx, job.Shard(id), meta.Encode(meta.Shard{ID: id})); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	v := newView[meta.Shard](job, meta.ImportPool, "me", log)
	go v.run(ctx, cli)
	<-v.loaded
	epoch, ok, err := meta.ClaimShard(ctx, cli, job, "s1", "me", 0)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	waitFor := func(what string, cond func(counts) bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if c := v.snapshot(); cond(c) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", what, v.snapshot())
			}
		}
	}
	waitFor("claimed", func(c counts) bool { return c.Claimed == 1 && c.ClaimedByMe == 1 && c.Pending == 2 })
	// done/ put and claims/ delete in one Txn, one revision.
	if ok, err := meta.CompleteShard(ctx, cli, job, "s1", epoch, meta.Done{}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	waitFor("done", func(c counts) bool { return c.Done == 1 && c.Claimed == 0 && c.Pending == 2 })
}

// claimOwner reads what meta.Decode reads, or declines.
func TestClaimOwner(t *testing.T) {
	for _, node := range []string{"n1", "db-host-3", "ünï", `q"uote`, `back\slash`, "a<b", ""} {
		val := []byte(meta.Encode(meta.Claim{Node: node, At: time.Now()}))
		got, ok := claimOwner(val)
		var c meta.Claim
		if err := meta.Decode("k", val, &c); err != nil {
			t.Fatal(err)
		}
		if ok && got != c.Node || !ok && node != "" && !strings.ContainsAny(node, `"\<`) {
			t.Errorf("%q: claimOwner %q %v, decoded %q", node, got, ok, c.Node)
		}
	}
	for _, bad := range []string{"", "{}", `{"at":"x","node":"n1"}`, `{"node":"n1`} {
		if got, ok := claimOwner([]byte(bad)); ok {
			t.Errorf("%q: %q", bad, got)
		}
	}
}

// next spreads the workers over the tables, and hands out the biggest
// shards of a table first.
func TestViewPicksAcrossTables(t *testing.T) {
	job, _ := meta.NewJob("/storm", "view-pick")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	v := newView[meta.Shard](job, meta.ImportPool, "me", log)
	v.shards, v.claims, v.done, v.failed = map[string]meta.Shard{}, map[string]string{}, map[string]bool{}, map[string]bool{}
	for _, table := range []string{"a", "b", "c"} {
		for k := 0; k < 4; k++ {
			id := fmt.Sprintf("%s%d", table, k)
			v.shards[id] = meta.Shard{ID: id, DB: "d", Table: table, Bytes: int64(10 + k)}
			v.queue = append(v.queue, id)
		}
	}
	v.tally = counts{Shards: 12, Pending: 12, ClaimablePending: 12}
	ctx := context.Background()
	tables := map[string]bool{}
	for k := 0; k < 3; k++ {
		id, s, ok := v.next(ctx)
		if !ok {
			t.Fatal("nothing to pick")
		}
		tables[s.Table] = true
		if s.Bytes != 13 {
			t.Errorf("picked %s (%d bytes) before the biggest shard of %s", id, s.Bytes, s.Table)
		}
	}
	if len(tables) != 3 {
		t.Errorf("three picks went to tables %v, want three different ones", tables)
	}
	// A shard whose owner died (its claim deleted, not done) comes before
	// the rest of the queue; one whose claim went with its completion
	// does not come back.
	ev := func(typ mvccpb.Event_EventType, key, val string) *clientv3.Event {
		return &clientv3.Event{Type: typ, Kv: &mvccpb.KeyValue{Key: []byte(key), Value: []byte(val)}}
	}
	claim := meta.Encode(meta.Claim{Node: "other"})
	v.mu.Lock()
	for _, e := range []*clientv3.Event{
		ev(clientv3.EventTypePut, job.Claim("a0"), claim), ev(clientv3.EventTypePut, job.Claim("b0"), claim),
		ev(clientv3.EventTypePut, job.Done("a0"), "{}"), ev(clientv3.EventTypeDelete, job.Claim("a0"), ""),
		ev(clientv3.EventTypeDelete, job.Claim("b0"), ""),
	} {
		v.apply(e)
	}
	v.mu.Unlock()
	if id, _, ok := v.next(ctx); !ok || id != "b0" {
		t.Errorf("after b0's owner died, next gave %q, want b0", id)
	}
}

// cutKV is the real etcd's KV whose Txn commits fail with Unavailable
// while fails lasts: what a client sees when a link is cut under a request
// the client's own retries leave to the caller (a Txn; range reads are
// retried inside clientv3).
type cutKV struct {
	clientv3.KV
	fails atomic.Int32
	// compacted Gets fail as if a compaction overtook a paged read.
	compacted atomic.Int32
}

func (k *cutKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if k.compacted.Add(-1) >= 0 {
		return nil, rpctypes.ErrCompacted
	}
	return k.KV.Get(ctx, key, opts...)
}

func (k *cutKV) Txn(ctx context.Context) clientv3.Txn { return cutTxn{Txn: k.KV.Txn(ctx), kv: k} }

type cutTxn struct {
	clientv3.Txn
	kv *cutKV
}

func (t cutTxn) If(c ...clientv3.Cmp) clientv3.Txn  { t.Txn = t.Txn.If(c...); return t }
func (t cutTxn) Then(o ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Then(o...); return t }
func (t cutTxn) Else(o ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Else(o...); return t }
func (t cutTxn) Commit() (*clientv3.TxnResponse, error) {
	if t.kv.fails.Add(-1) >= 0 {
		return nil, status.Error(codes.Unavailable, "error reading from server: EOF")
	}
	return t.Txn.Commit()
}

// A view whose first read meets etcd cut off, or a compaction, tries again
// instead of failing its start: a node's session outlives a cut of a second or two,
// and a view that gave up would make the whole node join again
// (TestFaultEtcdCompaction met it once, a step view starting while the
// test cut the link: "read cancel and barrier: ... Unavailable").
func TestViewFirstReadOutlivesACut(t *testing.T) {
	_, cli := etcdserver.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	job, _ := meta.NewJob("/storm", "view-cut")
	if _, err := cli.Put(ctx, job.Shard("s0"), meta.Encode(meta.Shard{ID: "s0"})); err != nil {
		t.Fatal(err)
	}
	kv := &cutKV{KV: cli.KV}
	kv.fails.Store(2)
	kv.compacted.Store(1)
	cli.KV = kv
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	v := newView[meta.Shard](job, meta.ImportPool, "me", log)
	stop, err := v.start(ctx, cli)
	if err != nil {
		t.Fatalf("the view's start failed on a cut etcd read: %v", err)
	}
	defer stop()
	if kv.fails.Load() >= 0 || kv.compacted.Load() >= 0 {
		t.Fatalf("the view's reads met %d cut(s) and %d compaction(s), want 2 and 1", 2-kv.fails.Load(), 1-kv.compacted.Load())
	}
	if c := v.snapshot(); c.Shards != 1 {
		t.Fatalf("view after the cut: %+v", c)
	}
}
