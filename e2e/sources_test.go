package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/internal/gendump"
	"storm/meta"
)

// shardedDumps generates one dump per host of the same database, with
// disjoint keys, as a sharded MySQL dumped on each of its hosts.
func shardedDumps(e *env, hosts []string, rows int) []gendump.Options {
	e.t.Helper()
	var gens []gendump.Options
	for i, h := range hosts {
		g := gendump.Options{Dir: filepath.Join(e.dir, "dump-"+h), DB: e.gen.DB, Rows: rows, Seed: int64(i + 1),
			Format: "mixed", FilesPerTable: 2, Header: true, IDOffset: int64(i+1) * 10_000_000}
		if _, err := gendump.Generate(g); err != nil {
			e.t.Fatal(err)
		}
		gens = append(gens, g)
	}
	return gens
}

// sourcesConfig writes a storm.toml whose sources are one dump per host,
// each readable only by its host's node.
func (e *env) sourcesConfig(hosts []string, gens []gendump.Options, overrides map[string]string) string {
	e.t.Helper()
	path := e.config(overrides)
	data, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	text := strings.Replace(string(data), fmt.Sprintf("dir = %q\n", e.gen.Dir), "", 1)
	for i, h := range hosts {
		text += fmt.Sprintf("[[source.dirs]]\nid = %q\ndir = %q\nnode = %q\n\n", "shard"+fmt.Sprint(i+1), gens[i].Dir, h)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// checkUnion compares every row of every table with the union of the dumps.
func (e *env) checkUnion(gens []gendump.Options) {
	e.t.Helper()
	db := e.db()
	for _, ti := range gendump.Tables(gens[0]) {
		var want []string
		for _, g := range gens {
			err := gendump.ExpectedRows(g, ti.Name, func(vals []*string) error {
				want = append(want, encodeRow(vals))
				return nil
			})
			if err != nil {
				e.t.Fatal(err)
			}
		}
		got := readTable(e.t, db, gens[0].DB, ti.Name, ti.Columns)
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			e.t.Errorf("%s: %d rows, want the union of the dumps' %d rows (or they differ)", ti.Name, len(got), len(want))
		}
	}
}

// version is how many times a key was written (0: absent).
func (e *env) version(key string) int64 {
	e.t.Helper()
	resp, err := e.etcd.Get(context.Background(), key)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return 0
	}
	return resp.Kvs[0].Version
}

// Three hosts each hold their own shard of one database. Two start; their
// shards are imported and the job waits (no barrier) for the third host's
// source; it comes minutes later, and the job ends once, with every row.
func TestE2ESourcesOnDifferentHosts(t *testing.T) {
	e := newEnv(t, gendump.Options{Header: true})
	hosts := []string{"db-host-1", "db-host-2", "db-host-3"}
	gens := shardedDumps(e, hosts, 6_000)
	cfg := e.sourcesConfig(hosts, gens, nil)
	n1, n2 := e.node(hosts[0], cfg), e.node(hosts[1], cfg)

	e.waitFor("the first two sources imported", time.Minute, func() bool {
		return e.version(e.job.PhaseMarker(meta.PlanSource("shard1"))) > 0 &&
			e.version(e.job.PhaseMarker(meta.PlanSource("shard2"))) > 0 &&
			e.count(meta.KindShards) > 0 && e.count(meta.KindDone) == e.count(meta.KindShards)
	})
	// Nothing can finish the job without shard3: the nodes wait.
	time.Sleep(500 * time.Millisecond)
	if e.barrier() != nil || e.count(meta.KindShards) != e.count(meta.KindDone) {
		t.Fatal("the job ended without its third source")
	}
	st := e.start("status", "status", "--config", cfg)
	if code := st.wait(t, 30*time.Second); code != 0 || !strings.Contains(st.stdout(), "source shard3 waits for node db-host-3, not running") {
		t.Errorf("status (exit %d) does not name the waiting source:\n%s", code, st.stdout())
	}

	n3 := e.node(hosts[2], cfg)
	for _, p := range []*proc{n1, n2, n3} {
		if code := p.wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("%s exited %d", p.id, code)
		}
	}
	b := e.barrier()
	if b == nil || b.Status != meta.StatusSucceeded || e.version(e.job.Barrier()) != 1 {
		t.Fatalf("barrier %+v (version %d)", b, e.version(e.job.Barrier()))
	}
	for _, r := range b.Tables {
		if !r.OK || r.Mode != meta.VerifyDigest {
			t.Errorf("table %+v", r)
		}
	}
	e.checkUnion(gens)
}

// Hosts whose nodes never run at the same time (node.exit-when-idle): each
// imports its own source and leaves; the last one finds every source done
// and runs verify and finalize, once, for the whole job. Each table is
// created and checked empty once, by the first source into it.
func TestE2ESourcesNonOverlapping(t *testing.T) {
	e := newEnv(t, gendump.Options{Header: true})
	hosts := []string{"db-host-1", "db-host-2", "db-host-3"}
	gens := shardedDumps(e, hosts, 3_000)
	cfg := e.sourcesConfig(hosts, gens, map[string]string{"node.exit-when-idle": "true"})
	for i, h := range hosts {
		p := e.node(h, cfg)
		if code := p.wait(t, time.Minute); code != 0 {
			t.Fatalf("%s exited %d", h, code)
		}
		last := i == len(hosts)-1
		if got := e.barrier() != nil; got != last {
			t.Fatalf("after %s: barrier present = %v, want %v", h, got, last)
		}
		if !last && !strings.Contains(p.stdout(), "done with its part") {
			t.Errorf("%s printed %q", h, p.stdout())
		}
	}
	b := e.barrier()
	if b == nil || b.Status != meta.StatusSucceeded || b.Rows != int64(3*3_000) {
		t.Fatalf("barrier %+v", b)
	}
	for _, p := range []meta.Phase{meta.PhasePlan, meta.PhaseVerifyPlan, meta.PhaseVerify, meta.PhaseFinalize} {
		if v := e.version(e.job.PhaseMarker(p)); v != 1 {
			t.Errorf("phase %s marker written %d times", p, v)
		}
	}
	if m := e.marker(meta.PhaseFinalize); m == nil || m.By != hosts[2] {
		t.Errorf("finalize marker %+v, want it by the last host", m)
	}
	resp, err := e.etcd.Get(context.Background(), e.job.Dir(meta.KindTables), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 4 {
		t.Errorf("%d table records, want 4", len(resp.Kvs))
	}
	for _, kv := range resp.Kvs {
		if kv.Version != 1 {
			t.Errorf("%s written %d times", kv.Key, kv.Version)
		}
	}
	e.checkUnion(gens)
}

// A node-local source's node is SIGKILLed mid-import: no other node touches
// its shards (only it can read them); restarted, it resumes them from the
// checkpoints, and the job ends with every row once.
func TestE2ESourcesLocalNodeKilled(t *testing.T) {
	e := newEnv(t, gendump.Options{Header: true})
	hosts := []string{"db-host-1", "db-host-2"}
	gens := shardedDumps(e, hosts, 40_000)
	cfg := e.sourcesConfig(hosts, gens, map[string]string{"import.shard-size": "65536", "import.batch-size": "16384"})
	h1, h2 := e.node(hosts[0], cfg), e.node(hosts[1], cfg)
	e.waitFor("db-host-1 to hold shards after some of its own are done", time.Minute, func() bool {
		return len(e.claimsOf(hosts[0])) > 0 && e.doneBy(hosts[0]) >= 2
	})
	h1.kill()
	// db-host-2 finishes its own source and then must leave shard1's alone.
	e.waitFor("shard2 done", time.Minute, func() bool { return e.doneOf("shard2") == e.shardsOf("shard2") })
	time.Sleep(4 * time.Second) // > the 3 s lease: the killed node's claims are gone
	if n := len(e.claimsOf(hosts[1])); n != 0 {
		t.Fatalf("db-host-2 claimed %d shard(s) of a source only db-host-1 can read", n)
	}
	if e.doneOf("shard1") == e.shardsOf("shard1") || e.barrier() != nil {
		t.Fatal("shard1 finished without its node")
	}
	h1 = e.node(hosts[0], cfg)
	for _, p := range []*proc{h1, h2} {
		if code := p.wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("%s exited %d", p.id, code)
		}
	}
	if b := e.barrier(); b == nil || b.Status != meta.StatusSucceeded {
		t.Fatalf("barrier %+v", b)
	}
	resp, err := e.etcd.Get(context.Background(), e.job.Dir(meta.KindDone), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		var d meta.Done
		k, _ := e.job.Parse(string(kv.Key))
		if err := meta.Decode(string(kv.Key), kv.Value, &d); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(k.Name, "shard1.") && d.Node != hosts[0] {
			t.Errorf("shard %s of db-host-1's source was done by %s", k.Name, d.Node)
		}
	}
	e.checkUnion(gens)
}

// A spec naming a node that never comes: status says so, there is no
// barrier, and TiKV import mode is not held while nothing is in work; a
// cancel ends the job and finalize restores the cluster.
func TestE2ESourcesNodeNeverComes(t *testing.T) {
	c := tidbCluster(t)
	e := newEnv(t, gendump.Options{Header: true})
	hosts := []string{"db-host-1", "db-host-2"}
	gens := shardedDumps(e, hosts, 4_000)
	cfg := e.sourcesConfig(hosts, gens, map[string]string{
		"tidb.pd-addrs":  tomlStrings([]string{c.PD.URL}),
		"tidb.pause-ttl": "3", // a keep every second while work goes on
	})
	n1 := e.node(hosts[0], cfg) // db-host-2 never comes
	e.waitFor("shard1 done", time.Minute, func() bool {
		return e.shardsOf("shard1") > 0 && e.doneOf("shard1") == e.shardsOf("shard1")
	})
	// Idle: the keeper stands down, so the stores hear nothing more.
	time.Sleep(time.Second)
	before := len(c.Modes()[1])
	time.Sleep(3 * time.Second)
	if after := len(c.Modes()[1]); after != before {
		t.Errorf("store 1 got %d switch(es) to import mode while no shard was in work", after-before)
	}
	if e.barrier() != nil {
		t.Fatal("a barrier without db-host-2's source")
	}
	st := e.start("status", "status", "--config", cfg)
	if code := st.wait(t, 30*time.Second); code != 0 || !strings.Contains(st.stdout(), "source shard2 waits for node db-host-2, not running") {
		t.Errorf("status (exit %d):\n%s", code, st.stdout())
	}
	cancel := e.start("cancel", "cancel", "--config", cfg, "--reason", "db-host-2 is gone")
	if code := cancel.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("cancel exited %d", code)
	}
	if code := n1.wait(t, time.Minute); code != 1 {
		t.Fatalf("n1 exited %d, want 1", code)
	}
	b := e.barrier()
	if b == nil || b.Status != meta.StatusCancelled || !strings.Contains(b.TiKV, "restored") {
		t.Fatalf("barrier %+v", b)
	}
	for _, id := range []uint64{1, 2, 3} { // the TiKV stores; 4 is a tombstone, 5 TiFlash
		modes := c.Modes()[id]
		if len(modes) == 0 || modes[len(modes)-1] != modeNormal {
			t.Errorf("store %d ended in %v", id, modes)
		}
	}
}

// doneBy counts the shards a node finished.
func (e *env) doneBy(node string) int {
	resp, err := e.etcd.Get(context.Background(), e.job.Dir(meta.KindDone), clientv3.WithPrefix())
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, kv := range resp.Kvs {
		var d meta.Done
		if meta.Decode(string(kv.Key), kv.Value, &d) == nil && d.Node == node {
			n++
		}
	}
	return n
}

// shardsOf and doneOf count a source's shards and those done (shard ids
// start with the source's id).
func (e *env) shardsOf(src string) int { return e.countPrefix(e.job.Dir(meta.KindShards) + src + ".") }
func (e *env) doneOf(src string) int   { return e.countPrefix(e.job.Dir(meta.KindDone) + src + ".") }

func (e *env) countPrefix(prefix string) int {
	resp, err := e.etcd.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(resp.Count)
}
