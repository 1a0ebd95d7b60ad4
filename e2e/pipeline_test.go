package e2e

// The table pipeline (docs/table-pipeline.md): deferred secondary indexes
// built back by each table's steps, on real storm processes against the
// private MariaDB.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storm/internal/gendump"
	"storm/meta"
)

// hasIndex says whether the table has an index of that name now.
func hasIndex(t *testing.T, db *sql.DB, schema, table, index string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = ?`,
		schema, table, index).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// stepStarted says whether a table's steps were claimed or done.
func (e *env) stepStarted(table string) bool {
	e.t.Helper()
	id := e.gen.DB + "." + table
	for _, k := range []meta.Kind{meta.KindStepClaims, meta.KindStepsDone, meta.KindStepsFailed} {
		resp, err := e.etcd.Get(context.Background(), e.job.Key(k, id))
		if err != nil {
			e.t.Fatal(err)
		}
		if len(resp.Kvs) > 0 {
			return true
		}
	}
	return false
}

// watchDeferral samples the target while the job runs: whenever orders
// holds rows and its steps have not begun (read after the indexes, so a
// build that began before the sample shows), its index presence must be
// want. It returns how many such samples it saw.
func (e *env) watchDeferral(db *sql.DB, want bool, stop <-chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() {
		seen := 0
		defer func() { out <- seen }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			has := hasIndex(e.t, db, e.gen.DB, "orders", "idx_status")
			var rows int
			if err := db.QueryRow("SELECT COUNT(*) FROM `" + e.gen.DB + "`.`orders`").Scan(&rows); err != nil {
				continue // not created yet
			}
			if rows == 0 || e.stepStarted("orders") {
				continue
			}
			seen++
			if has != want {
				e.t.Errorf("orders holds %d rows before its steps began, and its index idx_status exists: %v, want %v", rows, has, want)
				return
			}
		}
	}()
	return out
}

func stepsOf(b *meta.Barrier, table string) []meta.StepResult {
	for _, r := range b.Tables {
		if r.Table == table {
			return r.Steps
		}
	}
	return nil
}

func stepNamed(steps []meta.StepResult, name string) *meta.StepResult {
	for i := range steps {
		if steps[i].Step == name {
			return &steps[i]
		}
	}
	return nil
}

// Deferral is visible: while orders loads, its secondary indexes are
// absent; after the barrier every table has its schema file's indexes
// (checkTarget), built by the table's steps, which the barrier lists.
// With import.defer-indexes = off the indexes are there all along and no
// table has an index step.
func TestE2EDeferredIndexes(t *testing.T) {
	for _, tc := range []struct {
		mode     string
		existing bool // the tables exist, empty, with all their indexes
		noSchema bool // and the dump has no schema files: the target's own indexes are the set
	}{{"auto", false, false}, {"off", false, false}, {"auto", true, false}, {"auto", true, true}} {
		mode := tc.mode
		name := mode
		if tc.existing {
			name += "-existing"
		}
		if tc.noSchema {
			name += "-no-schema"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, gendump.Options{Rows: 80_000, Format: "csv", FilesPerTable: 2, Header: true})
			db := e.db()
			if tc.existing {
				mustExec(t, db, "CREATE DATABASE `"+e.gen.DB+"`")
				for _, ti := range gendump.Tables(e.gen) {
					mustExec(t, db, strings.Replace(strings.TrimSuffix(strings.TrimSpace(ti.Schema), ";"),
						"CREATE TABLE `", "CREATE TABLE `"+e.gen.DB+"`.`", 1))
				}
				if !hasIndex(t, db, e.gen.DB, "orders", "idx_status") {
					t.Fatal("orders was created without idx_status")
				}
			}
			if tc.noSchema {
				files, _ := filepath.Glob(filepath.Join(e.gen.Dir, "*-schema.sql"))
				for _, f := range files {
					if err := os.Remove(f); err != nil {
						t.Fatal(err)
					}
				}
			}
			cfg := e.config(map[string]string{"import.defer-indexes": `"` + mode + `"`, "import.batch-size": "65536",
				"import.shard-size": "1048576", "node.workers": "2"})
			stop := make(chan struct{})
			seen := e.watchDeferral(db, mode == "off", stop)
			n1, n2 := e.node("n1", cfg), e.node("n2", cfg)
			for _, p := range []*proc{n1, n2} {
				if code := p.wait(t, 3*time.Minute); code != 0 {
					t.Fatalf("%s exited %d\n%s", p.id, code, tail(p.log(), 30))
				}
			}
			close(stop)
			if n := <-seen; n == 0 {
				t.Errorf("never saw orders with rows before its steps began")
			}
			b := e.barrier()
			if b.Status != meta.StatusSucceeded {
				t.Fatalf("barrier %+v", b)
			}
			e.checkTarget()
			for _, table := range []string{"customers", "orders", "events", "wide"} {
				steps := stepsOf(b, table)
				ix, check, analyze := stepNamed(steps, "indexes"), stepNamed(steps, "check"), stepNamed(steps, "analyze")
				wantIx := mode == "auto" && table != "wide"
				if (ix != nil) != wantIx || check == nil || analyze == nil {
					t.Errorf("%s: steps %+v; want an index step: %v, a check and an analyze", table, steps, wantIx)
				}
				if ix != nil && !strings.Contains(ix.Detail, "added") {
					t.Errorf("%s: index step %+v", table, ix)
				}
			}
		})
	}
}

// A table that already holds rows (import.incremental) keeps its indexes
// as they are, even one its schema file does not have, and nothing is
// dropped or added; post.analyze = off runs no ANALYZE.
func TestE2EIncrementalKeepsIndexes(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 3_000, Format: "csv", Header: true, Tables: []string{"orders"}})
	db := e.db()
	mustExec(t, db, "CREATE DATABASE `"+e.gen.DB+"`")
	mustExec(t, db, "CREATE TABLE `"+e.gen.DB+"`.`orders` (id bigint NOT NULL PRIMARY KEY, customer_id bigint NOT NULL, amount decimal(14,4) NOT NULL,"+
		" currency char(3) NOT NULL DEFAULT 'EUR', ordered_at datetime NOT NULL, updated_at datetime(6) DEFAULT NULL, status tinyint NOT NULL DEFAULT 0,"+
		" note varchar(200) DEFAULT NULL, KEY idx_customer (customer_id, ordered_at), KEY extra_note (note))")
	mustExec(t, db, "INSERT INTO `"+e.gen.DB+"`.`orders` (id, customer_id, amount, ordered_at) VALUES (900000000, 1, 1, '2020-01-01')")
	before := tableIndexes(t, db, e.gen.DB, "orders")
	cfg := e.config(map[string]string{"import.incremental": "true", "post.analyze": `"off"`})
	n1 := e.node("n1", cfg)
	if code := n1.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("n1 exited %d\n%s", code, tail(n1.log(), 30))
	}
	b := e.barrier()
	if b.Status != meta.StatusSucceeded {
		t.Fatalf("barrier %+v", b)
	}
	if after := tableIndexes(t, db, e.gen.DB, "orders"); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("indexes changed:\n before %q\n after  %q", before, after)
	}
	steps := stepsOf(b, "orders")
	for _, name := range []string{"indexes", "check", "analyze"} {
		if stepNamed(steps, name) != nil {
			t.Errorf("steps %+v: want no %s step (incremental, post.analyze off)", steps, name)
		}
	}
	if vp := stepNamed(steps, "verify-plan"); vp == nil || !strings.Contains(vp.Detail, "incremental") {
		t.Errorf("steps %+v: want a verify-plan step counting the incremental table", steps)
	}
	want := 1
	if err := gendump.ExpectedRows(e.gen, "orders", func([]*string) error { want++; return nil }); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := db.QueryRow("SELECT COUNT(*) FROM `" + e.gen.DB + "`.`orders`").Scan(&rows); err != nil || rows != want {
		t.Errorf("orders holds %d rows (err %v), want %d", rows, err, want)
	}
}

// A schema file whose deferred key names a column the table lacks fails
// the job at plan time, naming the file and the key, before any row is
// written; so does a deferred key the server refuses (FULLTEXT on an
// integer column): the table is created as written, then loses its
// deferred keys.
func TestE2EBadSchemaKey(t *testing.T) {
	for _, tc := range []struct {
		name, from, to string
		want           []string
	}{
		{"missing column", "INDEX `idx_status` (`status`,", "INDEX `idx_status` (`state`,", []string{"key `idx_status`", "column `state`"}},
		{"refused by the server", "INDEX `idx_status` (`status`,`ordered_at`)", "FULLTEXT KEY `idx_status` (`status`)",
			[]string{"create table", "status"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, gendump.Options{Rows: 2_000, Format: "csv", Header: true})
			schema := filepath.Join(e.gen.Dir, e.gen.DB+".orders-schema.sql")
			body, err := os.ReadFile(schema)
			if err != nil {
				t.Fatal(err)
			}
			bad := strings.Replace(string(body), tc.from, tc.to, 1)
			if bad == string(body) {
				t.Fatalf("schema file has no %s:\n%s", tc.from, body)
			}
			if err := os.WriteFile(schema, []byte(bad), 0o644); err != nil {
				t.Fatal(err)
			}
			n1 := e.node("n1", e.config(nil))
			if code := n1.wait(t, 2*time.Minute); code != 1 {
				t.Fatalf("n1 exited %d, want 1\n%s", code, tail(n1.log(), 30))
			}
			b := e.barrier()
			for _, want := range append([]string{schema}, tc.want...) {
				if b.Status != meta.StatusFailed || !strings.HasPrefix(b.Reason, "plan: ") || !strings.Contains(b.Reason, want) {
					t.Errorf("barrier %s: %q, want a plan failure naming %s", b.Status, b.Reason, want)
				}
			}
			if n := e.count(meta.KindShards); n != 0 {
				t.Errorf("%d shards written", n)
			}
			db := e.db()
			for _, ti := range gendump.Tables(e.gen) {
				var rows int
				err := db.QueryRow("SELECT COUNT(*) FROM `" + e.gen.DB + "`.`" + ti.Name + "`").Scan(&rows)
				if err == nil && rows > 0 {
					t.Errorf("%s holds %d rows", ti.Name, rows)
				}
			}
		})
	}
}

// SIGKILL of the node running orders' index build, mid-ALTER: the test
// holds a metadata lock on orders so that the ALTER waits in the server
// when the node dies. The other node takes the table's steps over, finds
// the dead node's ALTER (or its indexes) rather than starting a second
// build, and the job succeeds with each index once.
func TestE2EKillDuringIndexBuild(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 20_000, Format: "csv", Header: true})
	cfg := e.config(map[string]string{"node.workers": "2"})
	n1, n2 := e.node("n1", cfg), e.node("n2", cfg)
	lock := e.lockOnceCreated("orders", "idx_status")
	ctx := context.Background()
	survivor := e.killStepClaimer("orders' ALTER TABLE to wait in the server", 2*time.Minute, "orders",
		func() bool { return e.alters("orders", "ADD", "") > 0 }, n1, n2)
	// The survivor claims the steps once the dead node's lease ends; then
	// the metadata lock goes.
	e.waitFor("the survivor to claim orders' steps", time.Minute, func() bool { return e.stepClaimer("orders") == survivor.id })
	time.Sleep(time.Second) // the survivor looks at the process list
	if _, err := lock.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	ix := e.succeeded(survivor, 3*time.Minute, "orders")
	if !strings.Contains(ix.Detail, "waited for") && !strings.Contains(ix.Detail, "added") {
		t.Errorf("index step %+v", ix)
	}
}

// SIGKILL of the node whose ALTER TABLE is running in the server, copying
// rows into the new indexes (no lock holds it: orders is big enough that
// its build takes seconds). The server goes on with the dead client's
// ALTER; the survivor takes the steps over, waits for that ALTER or finds
// its indexes, and never starts a second build: the job succeeds with each
// index once and every row in place.
func TestE2EKillWhileIndexBuildRuns(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 1_200_000, Format: "csv", Header: true})
	// storm's default shard and batch sizes: the harness's small ones
	// would make thousands of shards of this dataset.
	cfg := e.config(map[string]string{"node.workers": "2", "import.shard-size": "", "import.batch-size": ""})
	survivor := e.killStepClaimer("orders' ALTER TABLE to run in the server", 4*time.Minute, "orders",
		func() bool { return e.alters("orders", "ADD", "Waiting%") > 0 }, e.node("n1", cfg), e.node("n2", cfg))
	t.Logf("orders' index build killed; its ALTER still in the server: %v", e.alters("orders", "ADD", "") > 0)
	ix := e.succeeded(survivor, 4*time.Minute, "orders")
	// The survivor waited for the dead node's ALTER or found its indexes
	// built; "added" would mean a second build of an index the first one
	// had made, which the server would have refused (duplicate key name).
	if !strings.Contains(ix.Detail, "waited for") && !strings.Contains(ix.Detail, "already built") {
		t.Errorf("index step %+v: neither waited for nor found the dead node's build", ix)
	}
}

// SIGKILL of the plan leader after it recorded a table's indexes in etcd
// and while its ALTER TABLE ... DROP INDEX of the deferred keys waits in
// the server (orders exists, empty, with every index of its schema file,
// and the test holds a metadata lock on it). MariaDB aborts a statement
// waiting for a lock once its client is gone, so the DROP never runs; the
// next leader plans again, waits for no ALTER of orders, and loads it with
// its indexes in place, which its steps find built. The job succeeds with
// each index once and every row. (On TiDB the DROP is a DDL job that
// outlives its client: TestTiDBPlanLeaderKilledMidDrop.)
func TestE2EPlanLeaderKilledMidDrop(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 20_000, Format: "csv", Header: true})
	ctx := context.Background()
	e.createFromSchema("orders")
	lock := e.lockOnceCreated("orders", "")
	drops := func() int { return e.alters("orders", "DROP", "") }
	cfg := e.config(nil)
	n1 := e.node("n1", cfg)
	e.waitFor("the plan leader's DROP INDEX to wait in the server", time.Minute, func() bool { return drops() == 1 })
	n1.kill()
	e.waitFor("the server to abort the dead leader's DROP", 30*time.Second, func() bool { return drops() == 0 })
	n2 := e.node("n2", cfg)
	e.waitFor("the second leader's plan", time.Minute, func() bool { return strings.Contains(n2.log(), "msg=planned") })
	if _, err := lock.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	ix := e.succeeded(n2, 3*time.Minute, "orders")
	if !strings.Contains(ix.Detail, "already built") {
		t.Errorf("orders' index step %+v: want the keys the DROP never took found in place", ix)
	}
}

// A build that fails (here the DBA kills the ALTER TABLE, which the test
// holds behind a metadata lock) fails its table's steps, and the job, with
// the indexes named in the barrier.
func TestE2EIndexBuildFails(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 4_000, Format: "csv", Header: true})
	db := e.db()
	lock, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	n1 := e.node("n1", e.config(nil))
	// Past the plan's DROP of its deferred keys (see lockOnceCreated).
	e.waitFor("orders to exist without idx_status", time.Minute, func() bool {
		return hasTable(db, e.gen.DB, "orders") && !hasIndex(t, db, e.gen.DB, "orders", "idx_status")
	})
	holdMDL(t, lock, e.gen.DB, "orders")
	var id int64
	e.waitFor("orders' ALTER TABLE", time.Minute, func() bool {
		return db.QueryRow("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'ALTER TABLE %orders% ADD %'").Scan(&id) == nil
	})
	mustExec(t, db, fmt.Sprintf("KILL QUERY %d", id))
	if code := n1.wait(t, 2*time.Minute); code != 1 {
		t.Fatalf("n1 exited %d, want 1\n%s", code, tail(n1.log(), 30))
	}
	if _, err := lock.ExecContext(t.Context(), "COMMIT"); err != nil {
		t.Fatal(err)
	}
	b := e.barrier()
	if b.Status != meta.StatusFailed || !strings.Contains(b.Reason, "`idx_customer`, `idx_status`") || !strings.Contains(b.Reason, e.gen.DB+".orders") {
		t.Fatalf("barrier %s: %q, want it to name %s.orders and its indexes", b.Status, b.Reason, e.gen.DB)
	}
	found := false
	for _, r := range b.Tables {
		if r.Table == "orders" {
			found = true
			if r.OK || !strings.Contains(r.Note, "`idx_status`") {
				t.Errorf("orders result %+v", r)
			}
		}
	}
	if !found {
		t.Errorf("no barrier entry for orders: %+v", b.Tables)
	}
	if len(b.Failed) == 0 || !strings.Contains(b.Failed[len(b.Failed)-1].Reason, "`idx_status`") {
		t.Errorf("barrier failed list %+v", b.Failed)
	}

	// storm job retry runs the failed steps again, and only those: the
	// job succeeds with every index in place.
	cfg := e.config(nil)
	if code, out := e.run("retry", "job", "retry", "--config", cfg); code != 0 {
		t.Fatalf("job retry exited %d:\n%s", code, out)
	}
	n2 := e.node("n2", cfg)
	if code := n2.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("n2 exited %d after the retry\n%s", code, tail(n2.log(), 30))
	}
	if b := e.barrier(); b == nil || b.Status != meta.StatusSucceeded {
		t.Fatalf("barrier after retry %+v", b)
	}
	if got := strings.Count(n2.log(), "table steps done"); got != 1 || strings.Contains(n2.log(), "shard done") {
		t.Errorf("n2 did %d tables' steps (want 1, orders') and shards: %v", got, strings.Contains(n2.log(), "shard done"))
	}
	e.checkTarget()
}

func hasTable(db *sql.DB, schema, table string) bool {
	var n int
	db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", schema, table).Scan(&n)
	return n == 1
}

// holdMDL opens a transaction on conn that reads the table: its shared
// metadata lock holds any ALTER TABLE of it until COMMIT.
func holdMDL(t *testing.T, conn *sql.Conn, schema, table string) {
	t.Helper()
	if _, err := conn.ExecContext(t.Context(), "BEGIN"); err != nil {
		t.Fatal(err)
	}
	var one int
	if err := conn.QueryRowContext(t.Context(), "SELECT 1 FROM `"+schema+"`.`"+table+"` LIMIT 1").Scan(&one); err != nil && err != sql.ErrNoRows {
		t.Fatal(err)
	}
}

// Two FULLTEXT keys are built in two ALTERs (InnoDB on MySQL builds one
// FULLTEXT index an ALTER, MariaDB copies the table for more), the other
// keys with the first; the table ends with every index of its schema file.
func TestE2ETwoFulltextKeys(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 5_000, Format: "csv", Header: true})
	schema := filepath.Join(e.gen.Dir, e.gen.DB+".events-schema.sql")
	body, err := os.ReadFile(schema)
	if err != nil {
		t.Fatal(err)
	}
	const one = "FULLTEXT KEY `ft_payload` (`payload`)"
	two := strings.Replace(string(body), one, one+",\n  FULLTEXT KEY `ft_kind` (`kind`)", 1)
	if two == string(body) {
		t.Fatalf("schema file has no %s:\n%s", one, body)
	}
	if err := os.WriteFile(schema, []byte(two), 0o644); err != nil {
		t.Fatal(err)
	}
	n1 := e.node("n1", e.config(nil))
	if code := n1.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("n1 exited %d\n%s", code, tail(n1.log(), 30))
	}
	b := e.barrier()
	if b == nil || b.Status != meta.StatusSucceeded {
		t.Fatalf("barrier %+v", b)
	}
	e.checkTarget()
	ix := stepNamed(stepsOf(b, "events"), "indexes")
	if ix == nil || !strings.Contains(ix.Detail, "`ft_payload`") || !strings.Contains(ix.Detail, "`ft_kind`") || !strings.Contains(ix.Detail, "`idx_kind_time`") {
		t.Fatalf("events' index step %+v, want all three keys added", ix)
	}
	alters := strings.Count(n1.log(), `msg="building deferred indexes" job=`+e.job.ID+` node=n1 table=`+e.gen.DB+`.events`)
	if alters != 2 {
		t.Errorf("%d ALTERs for events, want 2 (one FULLTEXT key each)", alters)
	}
}

// lockOnceCreated takes a shared metadata lock on a generated table as soon
// as the plan has created it, and keeps it in an open transaction: an
// ALTER of the table waits behind it until the test commits. With dropped
// (an index the schema file defers) it waits for the plan to have dropped
// that index too: on MariaDB storm creates the table as written and then
// drops its deferred keys, and a lock taken in between would hold that
// DROP, and the plan with it, rather than the steps' ADD.
func (e *env) lockOnceCreated(table, dropped string) *sql.Conn {
	e.t.Helper()
	db := e.db()
	e.waitFor(table+" to exist", time.Minute, func() bool {
		var n int
		db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", e.gen.DB, table).Scan(&n)
		return n == 1 && (dropped == "" || !hasIndex(e.t, db, e.gen.DB, table, dropped))
	})
	ctx := context.Background()
	lock, err := db.Conn(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { lock.Close() })
	if _, err := lock.ExecContext(ctx, "BEGIN"); err != nil {
		e.t.Fatal(err)
	}
	var one int
	if err := lock.QueryRowContext(ctx, "SELECT 1 FROM `"+e.gen.DB+"`.`"+table+"` LIMIT 1").Scan(&one); err != nil && err != sql.ErrNoRows {
		e.t.Fatal(err)
	}
	return lock
}

// alters counts the statements ALTER TABLE <table> <verb> ... in the
// target's process list, leaving out those whose state is like notState
// ("": none left out).
func (e *env) alters(table, verb, notState string) int {
	e.t.Helper()
	q := "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE ?"
	args := []any{"ALTER TABLE %" + table + "% " + verb + " %"}
	if notState != "" {
		q += " AND STATE NOT LIKE ?"
		args = append(args, notState)
	}
	var n int
	e.db().QueryRow(q, args...).Scan(&n)
	return n
}

// killStepClaimer waits until building says a table's index build is
// under way and a node holds the table's steps, SIGKILLs that node and
// returns the other one of the two.
func (e *env) killStepClaimer(what string, timeout time.Duration, table string, building func() bool, a, b *proc) *proc {
	e.t.Helper()
	var builder string
	e.waitFor(what, timeout, func() bool {
		if !building() {
			return false
		}
		builder = e.stepClaimer(table)
		return builder == a.id || builder == b.id
	})
	if builder == a.id {
		a.kill()
		return b
	}
	b.kill()
	return a
}

// succeeded waits for p to exit 0 and wants a succeeded barrier and the
// target equal to the source, rows and indexes; it returns the table's
// index step.
func (e *env) succeeded(p *proc, timeout time.Duration, table string) *meta.StepResult {
	e.t.Helper()
	if code := p.wait(e.t, timeout); code != 0 {
		e.t.Fatalf("%s exited %d\n%s", p.id, code, tail(p.log(), 30))
	}
	b := e.barrier()
	if b == nil || b.Status != meta.StatusSucceeded {
		e.t.Fatalf("barrier %+v", b)
	}
	e.checkTarget()
	ix := stepNamed(stepsOf(b, table), "indexes")
	if ix == nil {
		e.t.Fatalf("%s: no index step in %+v", table, stepsOf(b, table))
	}
	e.t.Logf("%s's index step: %s", table, ix.Detail)
	return ix
}

// createFromSchema creates the generated database and one of its tables
// from the dump's schema file, as a DBA would before the job: an existing
// empty table with every index.
func (e *env) createFromSchema(table string) {
	e.t.Helper()
	schema, err := os.ReadFile(filepath.Join(e.gen.Dir, e.gen.DB+"."+table+"-schema.sql"))
	if err != nil {
		e.t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := e.db().Conn(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS `" + e.gen.DB + "`", "USE `" + e.gen.DB + "`", string(schema)} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			e.t.Fatalf("%s: %v", q, err)
		}
	}
}

// stepClaimer names the node holding a generated table's step claim, or "".
func (e *env) stepClaimer(table string) string {
	resp, err := e.etcd.Get(context.Background(), e.job.Key(meta.KindStepClaims, e.gen.DB+"."+table))
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	var c meta.Claim
	if meta.Decode("claim", resp.Kvs[0].Value, &c) != nil {
		return ""
	}
	return c.Node
}
