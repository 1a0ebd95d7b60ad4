package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storm/internal/etcdserver"
	"storm/internal/gendump"
	"storm/meta"
)

// Three nodes import one dump; one of them is SIGKILLed while it holds
// shards; the others take its shards over and the target holds exactly the
// source rows.
func TestE2EThreeNodesOneKilled(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 120_000, Format: "mixed", FilesPerTable: 2, Header: true})
	cfg := e.config(nil)
	n1 := e.node("n1", cfg)
	n2 := e.node("n2", cfg)
	n3 := e.node("n3", cfg)

	e.waitFor("n2 to hold a shard after some shards are done", 90*time.Second, func() bool {
		return e.count(meta.KindDone) >= 2 && len(e.claimsOf("n2")) > 0
	})
	held := e.claimsOf("n2")
	n2.kill()
	t.Logf("killed n2 while it held %v", held)

	for _, p := range []*proc{n1, n3} {
		if code := p.wait(t, 3*time.Minute); code != 0 {
			t.Fatalf("%s exited %d", p.id, code)
		}
	}
	b := e.barrier()
	if b == nil || b.Status != meta.StatusSucceeded {
		t.Fatalf("barrier %+v", b)
	}
	if b.Shards != e.count(meta.KindDone) || e.count(meta.KindClaims) != 0 {
		t.Fatalf("barrier says %d shards; %d done, %d still claimed", b.Shards, e.count(meta.KindDone), e.count(meta.KindClaims))
	}
	for _, r := range b.Tables {
		if !r.OK || r.Actual != r.Expected {
			t.Errorf("table result %+v", r)
		}
	}
	e.checkTarget()
	if !strings.Contains(n1.stdout()+n3.stdout(), "succeeded") {
		t.Errorf("nodes printed no result: %q %q", n1.stdout(), n3.stdout())
	}
}

// A node started after the barrier prints the result and exits at once with
// the job's code; `storm wait` and `storm status` read the same barrier.
func TestE2ELateNodeWaitAndStatus(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 5_000, Format: "csv", Header: true})
	cfg := e.config(nil)
	w := e.start("wait", "wait", "--config", cfg)
	if code := e.node("n1", cfg).wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("n1 exited %d", code)
	}
	if code := w.wait(t, 30*time.Second); code != 0 || !strings.Contains(w.stdout(), "succeeded") {
		t.Fatalf("wait exited %d: %q", code, w.stdout())
	}
	start := time.Now()
	late := e.node("late", cfg)
	if code := late.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("late node exited %d", code)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("late node took %s to see the barrier", d)
	}
	if !strings.Contains(late.stdout(), "succeeded") {
		t.Errorf("late node printed %q", late.stdout())
	}
	if strings.Contains(late.log(), "leading phase") {
		t.Error("late node led a phase after the barrier")
	}
	st := e.start("status", "status", "--config", cfg)
	if code := st.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("status exited %d", code)
	}
	if out := st.stdout(); !strings.Contains(out, "finished (succeeded)") || !strings.Contains(out, "0 pending") {
		t.Errorf("status printed:\n%s", out)
	}
	e.checkTarget()
}

// A node whose config differs from the job's spec refuses to run and names
// the differing keys.
func TestE2EConfigMismatch(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 2_000, Format: "csv", Header: true})
	if code := e.node("n1", e.config(nil)).wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("n1 exited %d", code)
	}
	// Remove the barrier so the second node gets as far as the spec check.
	if _, err := e.etcd.Delete(t.Context(), e.job.Barrier()); err != nil {
		t.Fatal(err)
	}
	other := e.node("n2", e.config(map[string]string{"import.shard-size": "1048576", "import.on-duplicate": `"replace"`,
		"verify.row-hash-bits": "64"}))
	if code := other.wait(t, 30*time.Second); code != 2 {
		t.Fatalf("n2 exited %d, want 2", code)
	}
	for _, want := range []string{"import.shard-size: 262144 in etcd, 1048576 here", "import.on-duplicate",
		`verify.row-hash: "sha1-crc32-1" in etcd, "sha1-concat-ws-1" here`, "to join, set verify.row-hash-bits = 32"} {
		if !strings.Contains(other.log(), want) {
			t.Errorf("error does not name %q:\n%s", want, tail(other.log(), 5))
		}
	}
}

// A value the column can't hold fails the job; the barrier and every node
// name the file and line; all nodes exit 1.
func TestE2EBadRowFailsJob(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 3_000, Format: "csv", Header: true, Tables: []string{"customers"}})
	files, _ := filepath.Glob(filepath.Join(e.gen.Dir, "*.customers.*.csv"))
	if len(files) == 0 {
		t.Fatal("no customers csv generated")
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	// Line 4 of the file: the id becomes text an integer column can't hold.
	_, rest, _ := strings.Cut(lines[3], ",")
	lines[3] = "not-a-number," + rest
	if err := os.WriteFile(files[0], []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := e.config(nil)
	n1, n2 := e.node("n1", cfg), e.node("n2", cfg)
	for _, p := range []*proc{n1, n2} {
		if code := p.wait(t, 2*time.Minute); code != 1 {
			t.Fatalf("%s exited %d, want 1", p.id, code)
		}
	}
	b := e.barrier()
	if b == nil || b.Status != meta.StatusFailed || len(b.Failed) != 1 {
		t.Fatalf("barrier %+v", b)
	}
	f := b.Failed[0]
	if f.File != files[0] || f.Line != 4 || !strings.Contains(b.Reason, fmt.Sprintf("%s:4", files[0])) {
		t.Fatalf("failure %+v, reason %q: want %s line 4 named", f, b.Reason, files[0])
	}
}

// A target table that already holds rows fails the plan, once, and the job.
func TestE2ETargetNotEmpty(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 1_000, Format: "sql", Tables: []string{"customers"}})
	db := e.db()
	schema, err := os.ReadFile(filepath.Join(e.gen.Dir, e.gen.DB+".customers-schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "CREATE DATABASE `"+e.gen.DB+"`")
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"USE `" + e.gen.DB + "`", string(schema), "INSERT INTO customers (id) VALUES (424242)"} {
		if _, err := conn.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	p := e.node("n1", e.config(nil))
	if code := p.wait(t, time.Minute); code != 1 {
		t.Fatalf("exited %d, want 1", code)
	}
	if b := e.barrier(); b == nil || !strings.Contains(b.Reason, "is not empty") {
		t.Fatalf("barrier %+v", b)
	}
}

// One node embeds etcd (--embed-etcd) and another joins it; the embedding
// node stays until its peer has seen the barrier.
func TestE2EEmbeddedEtcd(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 20_000, Format: "mixed", Header: false})
	cp, err := etcdserver.FreeClientPort()
	if err != nil {
		t.Fatal(err)
	}
	// port+1 serves the embedded member's peers.
	url := fmt.Sprintf("http://127.0.0.1:%d", cp)
	cfg := e.config(map[string]string{
		"etcd.endpoints": fmt.Sprintf("[%q]", url),
		"etcd.embed-dir": fmt.Sprintf("%q", filepath.Join(e.dir, "etcd")),
	})
	n1 := e.node("n1", cfg, "--embed-etcd")
	// n2 joins once n1 serves etcd. Started together, a client whose first
	// dial met no etcd backs off (1 s, then 1.6 s, ...) and can miss the
	// whole of a job this small: the embedding node finishes it and leaves
	// before n2 is back.
	e.waitFor("n1's embedded etcd", time.Minute, func() bool { return strings.Contains(n1.log(), "embedded etcd serving") })
	n2 := e.node("n2", cfg)
	for _, p := range []*proc{n1, n2} {
		if code := p.wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("%s exited %d", p.id, code)
		}
	}
	if !strings.Contains(n2.stdout(), "succeeded") {
		t.Fatalf("n2 printed %q", n2.stdout())
	}
	e.checkTarget()
}
