package meta

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"storm/internal/etcdserver"
)

func TestKeysFormatAndParse(t *testing.T) {
	j, err := NewJob("/storm/", "j1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key  string
		want Key
	}{
		{j.Spec(), Key{Job: "j1", Kind: KindSpec}},
		{j.Barrier(), Key{Job: "j1", Kind: KindBarrier}},
		{j.Cancel(), Key{Job: "j1", Kind: KindCancel}},
		{j.Node("host-1"), Key{Job: "j1", Kind: KindNodes, Name: "host-1"}},
		{j.Shard("s.shop.t.00001"), Key{Job: "j1", Kind: KindShards, Name: "s.shop.t.00001"}},
		{j.Claim("x"), Key{Job: "j1", Kind: KindClaims, Name: "x"}},
		{j.Done("x"), Key{Job: "j1", Kind: KindDone, Name: "x"}},
		{j.Failed("x"), Key{Job: "j1", Kind: KindFailed, Name: "x"}},
		{j.Progress("x"), Key{Job: "j1", Kind: KindProgress, Name: "x"}},
		{j.PhaseMarker(PhasePlan), Key{Job: "j1", Kind: KindPhase, Name: "plan"}},
		{j.Election(PhaseVerify) + "/694d7", Key{Job: "j1", Kind: KindElection, Name: "verify/694d7"}},
		{j.TiKVSaved(), Key{Job: "j1", Kind: KindTiKV, Name: "saved"}},
		{j.Key(KindSteps, "shop.t"), Key{Job: "j1", Kind: KindSteps, Name: "shop.t"}},
		{j.Key(KindStepClaims, "shop.t"), Key{Job: "j1", Kind: KindStepClaims, Name: "shop.t"}},
		{j.Key(KindStepsDone, "shop.t"), Key{Job: "j1", Kind: KindStepsDone, Name: "shop.t"}},
		{j.Key(KindStepsFailed, "shop.t"), Key{Job: "j1", Kind: KindStepsFailed, Name: "shop.t"}},
		{j.Key(KindStepProgress, "shop.t"), Key{Job: "j1", Kind: KindStepProgress, Name: "shop.t"}},
	}
	for _, tt := range tests {
		if !strings.HasPrefix(tt.key, "/storm/jobs/j1/") {
			t.Errorf("key %q outside the job", tt.key)
		}
		got, ok := j.Parse(tt.key)
		if !ok || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.key, got, ok, tt.want)
		}
	}
	for _, bad := range []string{"/storm/jobs/", "/storm/jobs/j1", "/storm/jobs/j1/shards/", "/storm/jobs/j1/bogus/x", "/other/jobs/j1/spec", "/storm/jobs/j1/spec/x"} {
		if k, ok := j.Parse(bad); ok {
			t.Errorf("Parse(%q) = %+v, want not ok", bad, k)
		}
	}
	for _, id := range []string{"", "a/b", "a b"} {
		if _, err := NewJob("/storm", id); err == nil {
			t.Errorf("NewJob(%q) accepted", id)
		}
	}
}

func TestSpecDiffNamesFields(t *testing.T) {
	a := Spec{Job: "j", Source: SourceSpec{Dir: "/d"}, Import: ImportSpec{ShardSize: 1 << 20, OnDuplicate: "error"}}
	b := a
	if d := a.Diff(b); len(d) != 0 {
		t.Fatalf("equal specs differ: %v", d)
	}
	b.Import.ShardSize = 2 << 20
	b.Source.CSV.Header = true
	d := a.Diff(b)
	if len(d) != 2 || !strings.HasPrefix(d[0], "import.shard-size: 1048576 in etcd, 2097152 here") || !strings.HasPrefix(d[1], "source.csv.header: false in etcd, true here") {
		t.Fatalf("diff = %q", d)
	}
}

// A job started by a storm whose row hash differs (or that predates the
// field) can't be joined: the difference is named, not found at verify as
// a digest mismatch.
func TestSpecDiffNamesRowHash(t *testing.T) {
	old := Spec{Job: "j", Verify: VerifySpec{Mode: VerifyDigest}}
	now := old
	now.Verify.RowHash = "sha1-concat-ws-1"
	if d := old.Diff(now); len(d) != 1 || d[0] != `verify.row-hash: (unset) in etcd, "sha1-concat-ws-1" here` {
		t.Fatalf("diff = %q", d)
	}
}

func TestClaimsWithExpiringSession(t *testing.T) {
	_, cli := etcdserver.StartT(t)
	job, _ := NewJob("/storm", "claims")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := concurrency.NewSession(cli, concurrency.WithTTL(1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	epochA, ok, err := ClaimShard(ctx, cli, job, "s1", "a", a.Lease())
	if err != nil || !ok {
		t.Fatalf("a claims s1: %v %v", ok, err)
	}
	if _, ok, _ := ClaimShard(ctx, cli, job, "s1", "b", b.Lease()); ok {
		t.Fatal("b claimed a shard a owns")
	}
	// a dies: its keepalives stop and the 1 s TTL runs out.
	a.Orphan()
	deadline := time.Now().Add(10 * time.Second)
	var epochB int64
	for {
		epochB, ok, err = ClaimShard(ctx, cli, job, "s1", "b", b.Lease())
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a's claim never expired")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if epochB <= epochA {
		t.Fatalf("epochs must grow: a %d, b %d", epochA, epochB)
	}
	// a's late completion is refused: the claim is b's now.
	if ok, err := CompleteShard(ctx, cli, job, "s1", epochA, Done{Rows: 1}); ok || err != nil {
		t.Fatalf("stale complete: %v %v", ok, err)
	}
	if ok, err := CompleteShard(ctx, cli, job, "s1", epochB, Done{Rows: 2}); !ok || err != nil {
		t.Fatalf("complete: %v %v", ok, err)
	}
	if _, ok, _ := ClaimShard(ctx, cli, job, "s1", "a", b.Lease()); ok {
		t.Fatal("claimed a done shard")
	}
	resp, err := cli.Get(ctx, job.Dir(KindClaims), clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("claims left: %v %v", resp.Kvs, err)
	}
}

func TestWaitBarrier(t *testing.T) {
	_, cli := etcdserver.StartT(t)
	job, _ := NewJob("/storm", "wait")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan Barrier, 1)
	go func() {
		b, err := WaitBarrier(ctx, cli, job)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	time.Sleep(200 * time.Millisecond)
	if _, err := cli.Put(ctx, job.Barrier(), Encode(Barrier{Job: "wait", Status: StatusFailed})); err != nil {
		t.Fatal(err)
	}
	if b := <-got; b.Status != StatusFailed || b.ExitCode() != 1 {
		t.Fatalf("barrier %+v", b)
	}
}

// import.shard-size reads and writes "auto" in the spec, and a node whose
// size differs is told in the config's terms.
func TestShardSizeJSON(t *testing.T) {
	for _, c := range []struct {
		size ShardSize
		json string
	}{{ShardSizeAuto, `"auto"`}, {16 << 20, `16777216`}} {
		b, err := json.Marshal(c.size)
		if err != nil || string(b) != c.json {
			t.Fatalf("marshal %v: %s, %v; want %s", c.size, b, err, c.json)
		}
		var back ShardSize
		if err := json.Unmarshal(b, &back); err != nil || back != c.size {
			t.Fatalf("unmarshal %s: %v, %v", b, back, err)
		}
	}
	var bad ShardSize
	if err := json.Unmarshal([]byte(`"huge"`), &bad); err == nil {
		t.Fatal(`"huge" accepted as a shard size`)
	}
	a := Spec{Job: "j", Import: ImportSpec{ShardSize: ShardSizeAuto}}
	b := a
	b.Import.ShardSize = 1 << 20
	diff := a.Diff(b)
	if len(diff) != 1 || diff[0] != `import.shard-size: "auto" in etcd, 1048576 here` {
		t.Fatalf("diff %q", diff)
	}
}
