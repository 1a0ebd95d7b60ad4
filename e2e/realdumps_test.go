package e2e

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"storm/internal/gendump"
	"storm/meta"
)

// Dumps written by real tools, not by storm: a source database in the
// private MariaDB is filled with the generated rows, dumped by Debian's
// mydumper (0.10.1: SQL only, no CSV) and by mariadb-dump, and each dump is
// imported by several nodes into a database of another name, which
// [[source.files]] rules map. Source and target are then compared table by
// table with CHECKSUM TABLE and row counts, and row by row with the
// generated rows.
func TestE2ERealDumps(t *testing.T) {
	for _, tool := range []string{"mydumper", "mariadb-dump", "mariadb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: scripts/setup.sh installs it (Debian packages mydumper and mariadb-client)", tool)
		}
	}
	gen := gendump.Options{DB: "realdump_src", Rows: 20_000, Seed: 7, Format: "sql", Dir: filepath.Join(t.TempDir(), "gen")}
	fillSource(t, gen)
	// The source is what the generator says, so a difference later is the
	// dump's or storm's.
	checkRows(t, gen, gen.DB)

	// One set of rules maps every dump of the source database, whatever
	// the tool, into the target database.
	rules := func(target string) string {
		return fmt.Sprintf(`
[[source.files]]
pattern = '^%[1]s-schema-create\.sql(?:\.gz)?$'
schema = %[2]q
type = "schema"

[[source.files]]
pattern = '^%[1]s\.(\w+)-schema\.sql(?:\.gz)?$'
schema = %[2]q
table = "$1"
type = "table-schema"

[[source.files]]
pattern = '^%[1]s\.(\w+)(?:\.\d+)?\.sql(?:\.gz)?$'
schema = %[2]q
table = "$1"
type = "sql"

# mariadb-dump, one table per file: tables/<table>.sql holds DROP TABLE,
# CREATE TABLE, LOCK TABLES and the INSERTs; tables/<table>.schema.sql
# is the same dump with --no-data.
[[source.files]]
pattern = '^tables/(\w+)\.schema\.sql$'
schema = %[2]q
table = "$1"
type = "table-schema"

[[source.files]]
pattern = '^tables/(\w+)\.sql$'
schema = %[2]q
table = "$1"
type = "sql"
`, gen.DB, target)
	}
	mydumper := func(args ...string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			runTool(t, "mydumper", append([]string{"-h", "127.0.0.1", "-P", fmt.Sprint(testDB.Port), "-u", testDB.User,
				"-p", testDB.Password, "-B", gen.DB, "-o", dir, "-v", "1"}, args...)...)
		}
	}
	mariadbDump := func(args ...string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			for _, ti := range gendump.Tables(gen) {
				for suffix, extra := range map[string][]string{".sql": nil, ".schema.sql": {"--no-data"}} {
					out := runTool(t, "mariadb-dump", append(append(dbArgs(), append(args, extra...)...), gen.DB, ti.Name)...)
					writeCompressed(t, filepath.Join(dir, "tables", ti.Name+suffix), out)
				}
			}
		}
	}
	cases := []struct {
		name  string
		dump  func(t *testing.T, dir string)
		nodes int
		files []string          // globs the dump must match, relative to its dir
		holds map[string]string // file: text it must hold
	}{
		// Chunks of 1,500 rows: several files per table, named
		// <db>.<table>.<n>.sql; mydumper's own string escaping, raw
		// binary bytes in double-quoted strings.
		// With the view (<db>.v_vip-schema-view.sql and its placeholder
		// <db>.v_vip-schema.sql) and, -G, the trigger
		// (<db>.orders-schema-triggers.sql).
		{"mydumper", mydumper("--trx-consistency-only", "--rows", "1500", "--triggers"), 3,
			[]string{"*.orders.0000[1-3].sql", "*.v_vip-schema-view.sql", "*.v_vip-schema.sql", "*.orders-schema-triggers.sql"}, nil},
		// gzip, INSERTs with column lists, statements of ~100 kB, no
		// locking.
		{"mydumper_gzip_complete_insert", mydumper("--no-locks", "--compress", "--complete-insert", "--statement-size", "100000"), 2,
			[]string{"*.events.sql.gz", "*.v_vip-schema-view.sql.gz", "*.v_vip-schema.sql.gz"}, nil},
		// tables/orders.sql holds the trigger too, between DELIMITER ;;
		// and DELIMITER ;.
		{"mariadb_dump", mariadbDump(), 3, []string{"tables/wide.sql"},
			map[string]string{"tables/orders.sql": "DELIMITER ;;", "tables/events.sql": "DROP TABLE IF EXISTS `events`;\n"}},
		// --hex-blob writes binary columns as 0x... literals, and one
		// INSERT per row with its column list.
		{"mariadb_dump_hex_blob_per_row", mariadbDump("--hex-blob", "--skip-extended-insert", "--complete-insert"), 2, []string{"tables/events.sql"},
			map[string]string{"tables/events.sql": "0x"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, gendump.Options{DB: "realdump_" + c.name})
			dir := filepath.Join(e.dir, "dump")
			start := time.Now()
			c.dump(t, dir)
			for _, glob := range c.files {
				if m, _ := filepath.Glob(filepath.Join(dir, glob)); len(m) == 0 {
					t.Fatalf("the dump holds no %s", glob)
				}
			}
			for file, text := range c.holds {
				if data, err := os.ReadFile(filepath.Join(dir, file)); err != nil || !bytes.Contains(data, []byte(text)) {
					t.Fatalf("%s does not hold %q (%v)", file, text, err)
				}
			}
			dumped := time.Since(start)
			cfg := e.withRules(e.config(map[string]string{"source.dir": fmt.Sprintf("%q", dir)}), rules(e.gen.DB))
			var nodes []*proc
			for i := range c.nodes {
				nodes = append(nodes, e.node(fmt.Sprintf("n%d", i+1), cfg))
			}
			for _, p := range nodes {
				if code := p.wait(t, 2*time.Minute); code != 0 {
					t.Fatalf("%s exited %d:\n%s", p.id, code, tail(p.log(), 20))
				}
			}
			t.Logf("dumped in %s, imported by %d nodes in %s", dumped.Round(time.Millisecond), c.nodes,
				(time.Since(start) - dumped).Round(time.Millisecond))
			b := e.barrier()
			if b == nil || b.Status != meta.StatusSucceeded || b.Rows != int64(gen.Rows) {
				t.Fatalf("barrier %+v", b)
			}
			compareDBs(t, e.db(), gen, e.gen.DB)
			checkRows(t, gen, e.gen.DB)
			var tables string
			var triggers int
			if err := e.db().QueryRow("SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME), "+
				"(SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?) "+
				"FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", e.gen.DB, e.gen.DB).Scan(&tables, &triggers); err != nil {
				t.Fatal(err)
			}
			if tables != "customers,events,orders,wide" || triggers != 0 {
				t.Errorf("target has tables %s and %d triggers, want the four tables alone", tables, triggers)
			}
		})
	}

	// mariadb-dump's usual output, one file of every table, can't be routed
	// to one table: the reader would load every INSERT into it. The plan
	// refuses it, naming the second table.
	t.Run("mariadb_dump_one_file", func(t *testing.T) {
		e := newEnv(t, gendump.Options{DB: "realdump_one_file"})
		dir := filepath.Join(e.dir, "dump")
		writeCompressed(t, filepath.Join(dir, "all.sql"), runTool(t, "mariadb-dump", append(dbArgs(), gen.DB)...))
		cfg := e.withRules(e.config(map[string]string{"source.dir": fmt.Sprintf("%q", dir)}), fmt.Sprintf(`
[[source.files]]
pattern = '^all\.sql$'
schema = %q
table = "customers"
type = "sql"
`, e.gen.DB))
		if code := e.node("n1", cfg).wait(t, time.Minute); code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		b := e.barrier()
		if b == nil || b.Status != meta.StatusFailed {
			t.Fatalf("barrier %+v", b)
		}
		for _, want := range []string{filepath.Join(dir, "all.sql"), "INSERT into table `events`", "first INSERT", "is into `customers`",
			"must hold the rows of one table"} {
			if !strings.Contains(b.Reason, want) {
				t.Errorf("%q not in the reason: %s", want, b.Reason)
			}
		}
		var n int
		if err := e.db().QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", e.gen.DB).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d tables created in %s (%v)", n, e.gen.DB, err)
		}
	})
}

// dbArgs are the connection options of the MariaDB clients for testDB.
func dbArgs() []string {
	return []string{"-h", "127.0.0.1", "-P", fmt.Sprint(testDB.Port), "-u", testDB.User, "--password=" + testDB.Password}
}

// runTool runs a tool and returns its stdout, failing the test with its stderr.
func runTool(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// fillSource generates gen's SQL dump and runs it with the mariadb client
// into the database gen.DB, dropped first.
func fillSource(t *testing.T, gen gendump.Options) {
	t.Helper()
	if _, err := gendump.Generate(gen); err != nil {
		t.Fatal(err)
	}
	var script bytes.Buffer
	fmt.Fprintf(&script, "DROP DATABASE IF EXISTS `%[1]s`;\nCREATE DATABASE `%[1]s`;\nUSE `%[1]s`;\n", gen.DB)
	for _, ti := range gendump.Tables(gen) {
		for _, pattern := range []string{"%s.%s-schema.sql", "%s.%s.*.sql"} {
			files, _ := filepath.Glob(filepath.Join(gen.Dir, fmt.Sprintf(pattern, gen.DB, ti.Name)))
			if len(files) == 0 {
				t.Fatalf("gendump wrote no %s", fmt.Sprintf(pattern, gen.DB, ti.Name))
			}
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				script.Write(data)
				script.WriteString("\n")
			}
		}
	}
	// A view and a trigger, as real databases have: storm imports neither
	// (the dumps' placeholder table of the view is not created).
	script.WriteString("CREATE VIEW `v_vip` AS SELECT `id`, `name` FROM `customers` WHERE `vip` = 1;\n" +
		"CREATE TRIGGER `orders_note` BEFORE INSERT ON `orders` FOR EACH ROW SET NEW.`note` = NEW.`note`;\n")
	cmd := exec.Command("mariadb", append(dbArgs(), "--batch")...)
	cmd.Stdin = &script
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fill %s with the mariadb client: %v\n%s", gen.DB, err, out)
	}
}

// compareDBs compares every table of gen in two databases of the server:
// CHECKSUM TABLE and COUNT(*).
func compareDBs(t *testing.T, db *sql.DB, gen gendump.Options, target string) {
	t.Helper()
	for _, ti := range gendump.Tables(gen) {
		var sums, counts [2]string
		for i, schema := range []string{gen.DB, target} {
			name := fmt.Sprintf("`%s`.`%s`", schema, ti.Name)
			var table string
			var sum sql.NullString
			if err := db.QueryRow("CHECKSUM TABLE "+name).Scan(&table, &sum); err != nil || !sum.Valid {
				t.Fatalf("CHECKSUM TABLE %s: %v %v", name, sum, err)
			}
			sums[i] = sum.String
			if err := db.QueryRow("SELECT COUNT(*) FROM " + name).Scan(&counts[i]); err != nil {
				t.Fatal(err)
			}
		}
		if sums[0] != sums[1] || counts[0] != counts[1] {
			t.Errorf("%s: source %s rows, checksum %s; target %s rows, checksum %s", ti.Name, counts[0], sums[0], counts[1], sums[1])
		}
	}
}

// checkRows compares every row of every table of gen, read from the
// database schema, with the generated rows.
func checkRows(t *testing.T, gen gendump.Options, schema string) {
	t.Helper()
	db, err := sql.Open("mysql", testDB.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, ti := range gendump.Tables(gen) {
		var want []string
		if err := gendump.ExpectedRows(gen, ti.Name, func(vals []*string) error {
			want = append(want, encodeRow(vals))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		got := readTable(t, db, schema, ti.Name, ti.Columns)
		sort.Strings(want)
		sort.Strings(got)
		if len(got) != len(want) {
			t.Errorf("%s.%s: %d rows, want %d", schema, ti.Name, len(got), len(want))
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s.%s: row differs (first of sorted rows):\n got %q\nwant %q", schema, ti.Name, got[i], want[i])
				break
			}
		}
	}
}
