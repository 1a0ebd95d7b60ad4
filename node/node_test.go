package node

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/import/sink"
	"storm/import/source"
	"storm/import/storage"
	"storm/internal/etcdserver"
	"storm/internal/gendump"
	"storm/internal/mariadbtest"
	"storm/meta"
)

var testDB *mariadbtest.Server

func TestMain(m *testing.M) { os.Exit(mariadbtest.RunTests(m, &testDB)) }

func testConfig(t *testing.T, endpoint, dumpDir, job string) Config {
	return Config{
		Spec: meta.Spec{
			Job:    job,
			Source: meta.SourceSpec{Dir: dumpDir, CSV: source.DefaultCSV()},
			Target: meta.TargetSpec{Host: testDB.Host, Port: testDB.Port, User: testDB.User, TimeZone: "+00:00"},
			Import: meta.ImportSpec{ShardSize: 64 << 10, BatchSize: 16 << 10, OnDuplicate: "error", Mode: "auto"},
		},
		Prefix: "/storm", Endpoints: []string{endpoint}, LeaseTTL: 2, Workers: 2,
		Password: testDB.Password, StartTimeout: 10 * time.Second, ProgressInterval: 200 * time.Millisecond,
		Out: io.Discard,
	}
}

// logBuffer keeps a node's log for the failure report.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// In-process nodes (so the race detector sees the coordination code) import
// one dump while one node's lease is revoked under it: it must stop its
// workers, rejoin, and the target must hold every row exactly once.
func TestNodesSurviveLostSession(t *testing.T) {
	srv, cli := etcdserver.StartT(t)
	gen := gendump.Options{Dir: filepath.Join(t.TempDir(), "dump"), DB: "node_lost_session", Rows: 30_000, Seed: 7, Format: "mixed", FilesPerTable: 2, Header: true}
	if _, err := gendump.Generate(gen); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const nodes = 3
	codes := make([]int, nodes)
	errs := make([]error, nodes)
	logs := make([]*logBuffer, nodes)
	var wg sync.WaitGroup
	for i := 0; i < nodes; i++ {
		cfg := testConfig(t, srv.ClientURL, gen.Dir, "lost-session")
		cfg.NodeID = fmt.Sprintf("n%d", i)
		logs[i] = &logBuffer{}
		cfg.Log = slog.New(slog.NewTextHandler(logs[i], nil))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes[i], errs[i] = Run(ctx, cfg)
		}(i)
	}
	job, _ := meta.NewJob("/storm", "lost-session")

	// Once n0 holds a shard, revoke its lease: to n0 it is a partition from
	// etcd that outlived the TTL.
	revoked := false
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && !revoked; time.Sleep(20 * time.Millisecond) {
		resp, err := cli.Get(ctx, job.Dir(meta.KindClaims), clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			var c meta.Claim
			if meta.Decode(string(kv.Key), kv.Value, &c) == nil && c.Node == "n0" && kv.Lease != 0 {
				if _, err := cli.Revoke(ctx, clientv3.LeaseID(kv.Lease)); err != nil {
					t.Fatal(err)
				}
				revoked = true
				break
			}
		}
	}
	if !revoked {
		t.Fatal("n0 never held a shard")
	}
	wg.Wait()
	for i := range codes {
		if codes[i] != ExitOK || errs[i] != nil {
			t.Errorf("n%d: exit %d, %v\n%s", i, codes[i], errs[i], logs[i].b.String())
		}
	}
	if !bytes.Contains(logs[0].b.Bytes(), []byte("lost the etcd session")) {
		t.Errorf("n0 never noticed its lost session:\n%s", logs[0].b.String())
	}
	b, _, err := meta.ReadBarrier(ctx, cli, job)
	if err != nil || b == nil || b.Status != meta.StatusSucceeded {
		t.Fatalf("barrier %+v, %v", b, err)
	}
	checkCounts(t, gen)
}

// checkCounts compares row counts and a per-table fingerprint of the target
// with the generator's expected rows.
func checkCounts(t *testing.T, gen gendump.Options) {
	t.Helper()
	db, err := sql.Open("mysql", testDB.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, ti := range gendump.Tables(gen) {
		var want int64
		if err := gendump.ExpectedRows(gen, ti.Name, func([]*string) error { want++; return nil }); err != nil {
			t.Fatal(err)
		}
		var got, distinct int64
		q := fmt.Sprintf("SELECT COUNT(*) FROM `%s`.`%s`", gen.DB, ti.Name)
		if err := db.QueryRow(q).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: %d rows, want %d", ti.Name, got, want)
		}
		if len(ti.PK) > 0 {
			q = fmt.Sprintf("SELECT COUNT(DISTINCT `%s`) FROM `%s`.`%s`", ti.PK[0], gen.DB, ti.Name)
			if err := db.QueryRow(q).Scan(&distinct); err != nil {
				t.Fatal(err)
			}
			if distinct != want {
				t.Errorf("%s: %d distinct keys, want %d", ti.Name, distinct, want)
			}
		}
	}
}

// A statement the server refuses for good fails the shard; only what a
// retry or another node could get past hands it back.
func TestIsPermanent(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"syntax", fmt.Errorf("shard s: %w", &mysql.MySQLError{Number: 1064, Message: "near STARTING BY"}), true},
		{"no such table", &mysql.MySQLError{Number: 1146}, true},
		{"deadlock", &mysql.MySQLError{Number: 1213}, false},
		{"TiDB write conflict", &mysql.MySQLError{Number: 9007}, false},
		{"TiKV server busy", &mysql.MySQLError{Number: 9003}, false},
		{"TiDB schema expired", &mysql.MySQLError{Number: 8027}, false},
		{"gone away after the budget", fmt.Errorf("target: still failing after 1m: %w", &mysql.MySQLError{Number: 2006}), false},
		{"connection refused", syscall.ECONNREFUSED, false},
		{"fenced", sink.ErrFenced, false},
		{"row", &sink.RowError{File: "a.csv", Line: 3}, true},
		{"S3 object changed", &inputError{fmt.Errorf("shard s: s3://b/k: %w: ETag x", storage.ErrChanged)}, true},
		{"S3 unreachable past the budget", &inputError{fmt.Errorf("shard s: read s3://b/k: %w: gave up", storage.ErrUnavailable)}, false},
	} {
		if got := isPermanent(tc.err); got != tc.want {
			t.Errorf("%s: isPermanent(%v) = %v", tc.name, tc.err, got)
		}
	}
}
