package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/etcd/client/v3/concurrency"

	"storm/election"
	"storm/import/sink"
	"storm/import/source"
	"storm/internal/etcdserver"
	"storm/meta"
)

func TestShardBits(t *testing.T) {
	for _, c := range []struct {
		info string
		bits int
		ok   bool
	}{
		{"SHARD_BITS=4", 4, true},
		{"PK_AUTO_RANDOM_BITS=5", 5, true},
		{"NOT_SHARDED", 0, false},
		{"NOT_SHARDED(PK_IS_HANDLE)", 0, false},
		{"", 0, false},
	} {
		if bits, ok := shardBits(c.info); bits != c.bits || ok != c.ok {
			t.Errorf("shardBits(%q) = %d, %v; want %d, %v", c.info, bits, ok, c.bits, c.ok)
		}
	}
}

// Split keys as SQL: integers as they are (within BIGINT or BIGINT
// UNSIGNED), text quoted with its quotes and backslashes escaped, bytes
// that are not UTF-8 in hex.
func TestSQLLiteral(t *testing.T) {
	for _, c := range []struct {
		v       string
		integer bool
		want    string
	}{
		{"42", true, "42"},
		{"-9223372036854775808", true, "-9223372036854775808"},
		{"18446744073709551615", true, "18446744073709551615"},
		{"1e3", true, "'1e3'"},
		{"42", false, "'42'"},
		{`it's a \ path`, false, `'it''s a \\ path'`},
		{"\xff\x00", false, "X'FF00'"},
	} {
		if got := sqlLiteral([]byte(c.v), c.integer); got != c.want {
			t.Errorf("sqlLiteral(%q, %v) = %s, want %s", c.v, c.integer, got, c.want)
		}
	}
}

func TestSplitStmt(t *testing.T) {
	for _, c := range []struct {
		ps   meta.PreSplit
		want string
	}{
		{meta.PreSplit{DB: "d", Table: "t`x", Method: meta.PreSplitFirstKeys, By: []string{"(10)", "('a', 2)"}},
			"SPLIT TABLE `d`.`t``x` BY (10), ('a', 2)"},
		{meta.PreSplit{DB: "d", Table: "t", Method: meta.PreSplitEven, Between: "(0) AND (" + maxRowIDRange + ")", Regions: 16},
			"SPLIT TABLE `d`.`t` BETWEEN (0) AND (9223372036854775807) REGIONS 16"},
	} {
		if got := splitStmt(c.ps); got != c.want {
			t.Errorf("splitStmt = %s, want %s", got, c.want)
		}
	}
}

// A split that fails is a warning in the table's record and the log, never
// the plan's failure: here the target (MariaDB) has no TiDB key
// information at all.
func TestPreSplitFailureIsAWarning(t *testing.T) {
	srv, _ := etcdserver.StartT(t)
	dir := t.TempDir()
	csv := filepath.Join(dir, "presplit_warn.t.000.csv")
	if err := os.WriteFile(csv, []byte("1,a\n2,b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, srv.ClientURL, dir, "presplit-warning")
	cfg.NodeID = "n1"
	logs := &logBuffer{}
	n := newTestNode(t, cfg, logs)
	ctx := t.Context()
	tg, err := sink.Open(ctx, sink.Config{Host: testDB.Host, Port: testDB.Port, User: testDB.User, Password: testDB.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	n.target = tg
	for _, q := range []string{"DROP DATABASE IF EXISTS presplit_warn", "CREATE DATABASE presplit_warn",
		"CREATE TABLE presplit_warn.t (id INT PRIMARY KEY, v VARCHAR(8))"} {
		if _, err := tg.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := concurrency.NewSession(n.cli)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	pt := meta.PlanTable{DB: "presplit_warn", Table: "t"}
	chunks := []source.Chunk{{Path: csv, Format: source.FormatCSV, End: -1, StartLine: 1}}
	m, err := election.Once(ctx, sess, n.job, meta.PhasePlan, "n1", func(ctx context.Context, l *election.Leader) (any, error) {
		return nil, n.preSplit(ctx, l, &pt, chunks)
	})
	if err != nil || m.Error != "" {
		t.Fatalf("plan failed: %v %q", err, m.Error)
	}
	if pt.PreSplit == nil || pt.PreSplit.Warning == "" || !strings.Contains(pt.PreSplit.Warning, "presplit_warn.t") {
		t.Fatalf("pre-split %+v: want a warning naming the table", pt.PreSplit)
	}
	key := n.job.Key(meta.KindTables, "presplit_warn.t")
	resp, err := n.cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("table record: %v %v", resp, err)
	}
	var rec meta.PlanTable
	if err := meta.Decode(key, resp.Kvs[0].Value, &rec); err != nil || rec.PreSplit == nil || rec.PreSplit.Warning != pt.PreSplit.Warning {
		t.Fatalf("table record %+v (%v)", rec, err)
	}
	if !strings.Contains(logs.String(), "pre-split failed; importing without it") {
		t.Errorf("no warning logged:\n%s", logs.String())
	}
}
