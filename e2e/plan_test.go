package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storm/internal/gendump"
	"storm/node"
)

// storm plan --dry-run checks the sources and the target and prints the
// shard plan, writing nothing; each failed check names what to fix.
func TestE2EPlanDryRun(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 4_000, Format: "mixed", FilesPerTable: 2, Header: true})
	cfg := e.config(map[string]string{"import.shard-size": "65536"})

	p := e.start("plan", "plan", "--config", cfg, "--dry-run", "--json")
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("plan exited %d:\n%s\n%s", code, p.stdout(), p.log())
	}
	var d node.DryRun
	if err := json.Unmarshal([]byte(p.stdout()), &d); err != nil {
		t.Fatalf("%v:\n%s", err, p.stdout())
	}
	if !d.OK() || len(d.Tables) != 4 || d.Shards < 8 || !d.LoadData {
		t.Fatalf("dry run %+v", d)
	}
	// The keys left out during the load (docs/table-pipeline.md).
	deferred := map[string]string{}
	for _, c := range d.Checks {
		if name, ok := strings.CutPrefix(c.Name, "deferred indexes of "+e.gen.DB+"."); ok {
			deferred[name] = c.Detail
		}
	}
	for table, want := range map[string]string{"orders": "idx_customer, idx_status", "customers": "idx_name, country",
		"events": "idx_kind_time, ft_payload", "wide": "none"} {
		if deferred[table] != want {
			t.Errorf("deferred indexes of %s: %q, want %q", table, deferred[table], want)
		}
	}
	// Nothing was written: no database in the target, no key in etcd.
	var n int
	if err := e.db().QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", e.gen.DB).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the dry run created the database (%d, %v)", n, err)
	}
	if e.count("spec") != 0 || e.barrier() != nil {
		t.Fatal("the dry run wrote to etcd")
	}

	// A broken schema file and a table that is not empty are named, with
	// what to fix; the exit code says the plan would fail.
	schema := schemaFile(e.gen.Dir, "orders")
	writeFile(t, schema, []byte("CREATE TABLE orders (id BIGINT PRIMARY KEY,, x INT);\n"))
	events := schemaFile(e.gen.Dir, "events")
	body, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, events, []byte(strings.Replace(string(body), "(`kind`,`created_at`)", "(`kind`,`made_at`)", 1)))
	mustExec(t, e.db(), "CREATE DATABASE `"+e.gen.DB+"`")
	mustExec(t, e.db(), "CREATE TABLE `"+e.gen.DB+"`.customers (id BIGINT PRIMARY KEY)")
	mustExec(t, e.db(), "INSERT INTO `"+e.gen.DB+"`.customers VALUES (1)")
	p = e.start("plan2", "plan", "--config", cfg, "--dry-run")
	if code := p.wait(t, time.Minute); code != 1 {
		t.Fatalf("plan exited %d, want 1:\n%s", code, p.stdout())
	}
	out := p.stdout()
	for _, want := range []string{"FAIL schema of " + e.gen.DB + ".orders: " + schema, "FAIL empty " + e.gen.DB + ".customers",
		"FAIL deferred indexes of " + e.gen.DB + ".events: " + events + ": key `idx_kind_time` names column `made_at`",
		"fix: empty it, or set import.incremental", "shard size: 65536 bytes (65.5 kB)", "shard plan:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(e.gen.Dir, "x")); err == nil {
		t.Fatal("unexpected file")
	}
}
