package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"storm/election"
	"storm/import/checksum"
	"storm/import/sink"
	"storm/import/source"
	"storm/internal/etcdserver"
	"storm/meta"
)

// An existing empty table whose indexes differ from its schema file's
// fails the plan, before any row is written, naming the schema file, the
// table and the index; so does `storm plan --dry-run`. The legitimate
// cases go on: the same indexes, a deferred key missing (the steps build
// it; a plan leader that died on TiDB leaves a table so), an incremental
// job, no schema file, a table an earlier attempt of the job recorded.
func TestPlanExistingTableIndexes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, cli := etcdserver.StartT(t)
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	tg, err := sink.Open(ctx, sink.Config{Host: testDB.Host, Port: testDB.Port, User: testDB.User, Password: testDB.Password, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	job, err := meta.NewJob("/storm", "plan-indexes")
	if err != nil {
		t.Fatal(err)
	}
	const schema = "CREATE TABLE `t` (\n  `id` INT NOT NULL,\n  `a` INT,\n  `b` INT,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`b`),\n  KEY `k` (`a`)\n);\n"
	for i, c := range []struct {
		name                  string
		exists                string // the table's columns and keys in the target
		schema                string // the schema file; "" none
		deferOff, incremental bool
		recorded              bool // an earlier attempt of the job recorded the table
		want                  string
	}{
		{name: "same", exists: "id INT PRIMARY KEY, a INT, b INT, UNIQUE KEY u (b), KEY k (a)", schema: schema},
		{name: "deferred key missing", exists: "id INT PRIMARY KEY, a INT, b INT, UNIQUE KEY u (b)", schema: schema},
		{name: "unique key missing", exists: "id INT PRIMARY KEY, a INT, b INT, KEY k (a)", schema: schema, want: "index `u` is missing"},
		{name: "other columns", exists: "id INT PRIMARY KEY, a INT, b INT, UNIQUE KEY u (b), KEY k (b)", schema: schema,
			want: "index `k` key part 1 is b(0), want a(0)"},
		{name: "not unique", exists: "id INT PRIMARY KEY, a INT, b INT, KEY u (b), KEY k (a)", schema: schema, want: "index `u` is non-unique, want unique"},
		{name: "extra index", exists: "id INT PRIMARY KEY, a INT, b INT, UNIQUE KEY u (b), KEY k (a), KEY x (a, b)", schema: schema,
			want: "index(es) not in the schema file: `x`"},
		{name: "defer off, key missing", exists: "id INT PRIMARY KEY, a INT, b INT, UNIQUE KEY u (b)", schema: schema, deferOff: true,
			want: "index `k` is missing"},
		{name: "incremental", exists: "id INT PRIMARY KEY, a INT, b INT", schema: schema, incremental: true},
		{name: "no schema file", exists: "id INT PRIMARY KEY, a INT, b INT, KEY x (b)"},
		// The record decides (without it, this table would fail the plan).
		{name: "recorded by an earlier attempt", exists: "id INT PRIMARY KEY, a INT, b INT, UNIQUE KEY u (b)", schema: schema, deferOff: true, recorded: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dbName := fmt.Sprintf("plan_ix_%d", i)
			for _, q := range []string{"DROP DATABASE IF EXISTS `" + dbName + "`", "CREATE DATABASE `" + dbName + "`",
				"CREATE TABLE `" + dbName + "`.`t` (" + c.exists + ")"} {
				if _, err := tg.DB().ExecContext(ctx, q); err != nil {
					t.Fatal(q, err)
				}
			}
			dir := t.TempDir()
			tb := source.Table{DB: dbName, Name: "t"}
			if c.schema != "" {
				tb.SchemaFile = filepath.Join(dir, dbName+".t-schema.sql")
				if err := os.WriteFile(tb.SchemaFile, []byte(c.schema), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			spec := meta.Spec{Import: meta.ImportSpec{DeferIndexes: "auto", Incremental: c.incremental}}
			if c.deferOff {
				spec.Import.DeferIndexes = "off"
			}
			log := &logBuffer{}
			n := &Node{cfg: Config{NodeID: "n1"}, spec: spec, job: job, cli: cli, target: tg, dcols: map[string][]checksum.Column{},
				log: slog.New(slog.NewTextHandler(log, nil))}
			if c.recorded {
				rec := meta.PlanTable{DB: dbName, Table: "t", IndexSource: tb.SchemaFile}
				if _, err := cli.Put(ctx, job.Key(meta.KindTables, dbName+".t"), meta.Encode(rec)); err != nil {
					t.Fatal(err)
				}
			}
			m, err := election.Once(ctx, sess, job, meta.PlanSource(dbName), "n1", func(ctx context.Context, l *election.Leader) (any, error) {
				return n.prepareTable(ctx, l, tg.DB(), tb)
			})
			if err != nil {
				t.Fatal(err)
			}
			if c.want == "" {
				if m.Error != "" {
					t.Fatalf("plan failed: %s", m.Error)
				}
				return
			}
			for _, want := range []string{c.want, tb.SchemaFile, "table `" + dbName + "`.`t`", existingIndexesFix} {
				if !strings.Contains(m.Error, want) {
					t.Errorf("plan error %q lacks %q", m.Error, want)
				}
			}

			// The dry run says the same, before anything is written.
			writeDump(t, dir, dbName)
			cfg := testConfig(t, "", dir, "dry-"+dbName)
			cfg.Spec.Import = spec.Import
			d, err := PlanDryRun(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var found bool
			for _, ck := range d.Checks {
				if ck.Name == "indexes of "+dbName+".t" {
					found = true
					if ck.OK || !strings.Contains(ck.Detail, c.want) || ck.Fix != existingIndexesFix {
						t.Errorf("dry run check %+v, want it failed naming %q", ck, c.want)
					}
				}
			}
			if !found || d.OK() {
				t.Errorf("dry run: no failed index check in %+v", d.Checks)
			}
		})
	}
}

// writeDump writes a one-table dump: the schema file (already there) and
// a data file of one row.
func writeDump(t *testing.T, dir, db string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, db+".t.csv"), []byte("1,1,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
