package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"storm/import/checksum"
	"storm/import/sink"
	"storm/import/source"
	"storm/internal/etcdserver"
	"storm/internal/faultproxy"
	"storm/meta"
)

// sameIndex compares a recorded definition with what STATISTICS shows.
func TestSameIndex(t *testing.T) {
	col := func(name string, prefix int) source.IndexColumn {
		return source.IndexColumn{Name: name, Prefix: prefix}
	}
	key := source.Index{Name: "k", Kind: source.IndexKey, Columns: []source.IndexColumn{col("a", 0), col("b", 10)}}
	for _, tc := range []struct {
		name string
		ix   source.Index
		got  indexShape
		want string // "" when the same
	}{
		{"same", key, indexShape{typ: "BTREE", columns: []source.IndexColumn{col("A", 0), col("b", 10)}}, ""},
		{"server's own prefix on a BLOB", key, indexShape{typ: "BTREE", columns: []source.IndexColumn{col("a", 3072), col("b", 10)}}, ""},
		{"other prefix", key, indexShape{typ: "BTREE", columns: []source.IndexColumn{col("a", 0), col("b", 20)}}, "key part 2"},
		{"other column", key, indexShape{typ: "BTREE", columns: []source.IndexColumn{col("a", 0), col("c", 10)}}, "key part 2"},
		{"fewer parts", key, indexShape{typ: "BTREE", columns: []source.IndexColumn{col("a", 0)}}, "1 key part(s), want 2"},
		{"unique", key, indexShape{unique: true, typ: "BTREE", columns: []source.IndexColumn{col("a", 0), col("b", 10)}}, "is unique, want non-unique"},
		{"fulltext", source.Index{Name: "f", Kind: source.IndexFulltext, Columns: []source.IndexColumn{col("t", 0)}},
			indexShape{typ: "BTREE", columns: []source.IndexColumn{col("t", 0)}}, "type BTREE, want FULLTEXT"},
	} {
		got := sameIndex(tc.ix, &tc.got)
		if (got == "") != (tc.want == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// stepsEnv is a node whose target reaches the test MariaDB through a
// proxy the test can cut, with a real etcd for the table-step pool.
type stepsEnv struct {
	t     *testing.T
	ctx   context.Context
	n     *Node
	cli   *clientv3.Client
	sess  *concurrency.Session
	proxy *faultproxy.Proxy
	db    string
	log   *logBuffer
}

func newStepsEnv(t *testing.T, db string) *stepsEnv {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	_, cli := etcdserver.StartT(t)
	proxy, err := faultproxy.Start(fmt.Sprintf("%s:%d", testDB.Host, testDB.Port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	host, port, _ := net.SplitHostPort(proxy.Addr())
	p, _ := strconv.Atoi(port)
	tg, err := sink.Open(ctx, sink.Config{Host: host, Port: p, User: testDB.User, Password: testDB.Password, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	job, err := meta.NewJob("/storm", "steps-"+db)
	if err != nil {
		t.Fatal(err)
	}
	e := &stepsEnv{t: t, ctx: ctx, cli: cli, sess: sess, proxy: proxy, db: db, log: &logBuffer{}}
	e.n = &Node{cfg: Config{NodeID: "n1"}, job: job, cli: cli, target: tg, dcols: map[string][]checksum.Column{},
		spec: meta.Spec{Post: meta.PostSpec{Analyze: true}}, log: slog.New(slog.NewTextHandler(e.log, nil))}
	for _, q := range []string{"DROP DATABASE IF EXISTS `" + db + "`", "CREATE DATABASE `" + db + "`"} {
		if _, err := tg.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *stepsEnv) logText() string {
	e.log.mu.Lock()
	defer e.log.mu.Unlock()
	return e.log.b.String()
}

// has says whether the key exists in etcd.
func (e *stepsEnv) has(kind meta.Kind, id string) bool {
	e.t.Helper()
	resp, err := e.cli.Get(e.ctx, e.n.job.Key(kind, id))
	if err != nil {
		e.t.Fatal(err)
	}
	return len(resp.Kvs) > 0
}

// deferredTable makes table t with one deferred index to build, and its
// record and step item in etcd.
func (e *stepsEnv) deferredTable() (meta.TableStep, string, *view[meta.Shard]) {
	e.t.Helper()
	if _, err := e.n.target.DB().ExecContext(e.ctx, "CREATE TABLE `"+e.db+"`.`t` (id INT PRIMARY KEY, a INT)"); err != nil {
		e.t.Fatal(err)
	}
	s := meta.TableStep{DB: e.db, Table: "t"}
	id := stepID(s.DB, s.Table)
	rec := meta.PlanTable{DB: s.DB, Table: s.Table, IndexSource: "t-schema.sql", Indexes: []source.Index{
		{Name: "PRIMARY", Kind: source.IndexPrimary, Columns: []source.IndexColumn{{Name: "id"}}},
		{Name: "k_a", Kind: source.IndexKey, Columns: []source.IndexColumn{{Name: "a"}}, Def: "KEY `k_a` (`a`)", Deferred: true},
	}}
	for k, v := range map[string]string{e.n.job.Key(meta.KindTables, id): meta.Encode(rec), e.n.job.Key(meta.KindSteps, id): meta.Encode(s)} {
		if _, err := e.cli.Put(e.ctx, k, v); err != nil {
			e.t.Fatal(err)
		}
	}
	return s, id, newView[meta.Shard](e.n.job, meta.ImportPool, "n1", e.n.log)
}

// A transient error inside a table's steps (here the database out of
// reach) hands the steps back to the pool, claim released and the table
// not failed, and does not stop the node; once the database is back the
// next claimer does them, building the deferred index once.
func TestTableStepsTransientErrorReleases(t *testing.T) {
	defer func(tries int, pause time.Duration) { stepTries, stepPause = tries, pause }(stepTries, stepPause)
	stepTries, stepPause = 2, 50*time.Millisecond
	e := newStepsEnv(t, "steps_transient")
	s, id, iv := e.deferredTable()

	e.proxy.Block()
	if err := e.n.tableSteps(e.ctx, e.sess, iv, id, s); err != nil {
		t.Fatalf("tableSteps with the database away: %v, want nil (the node goes on)\n%s", err, e.logText())
	}
	if e.has(meta.KindStepsFailed, id) || e.has(meta.KindStepsDone, id) {
		t.Fatalf("the table was settled by a transient error:\n%s", e.logText())
	}
	if e.has(meta.KindStepClaims, id) {
		t.Fatalf("the claim of the steps is still held after a transient error:\n%s", e.logText())
	}
	if !strings.Contains(e.logText(), "handing them back") {
		t.Errorf("no log line says the steps were handed back:\n%s", e.logText())
	}

	e.proxy.Heal()
	if err := e.n.tableSteps(e.ctx, e.sess, iv, id, s); err != nil {
		t.Fatal(err)
	}
	if !e.has(meta.KindStepsDone, id) || e.has(meta.KindStepsFailed, id) {
		t.Fatalf("the retried steps did not complete:\n%s", e.logText())
	}
	var n int
	if err := e.n.target.DB().QueryRowContext(e.ctx, "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 't' AND INDEX_NAME = 'k_a'", e.db).Scan(&n); err != nil || n != 1 {
		t.Fatalf("index k_a: %d, %v", n, err)
	}
}

// A genuine failure (the server refuses the ALTER: the key names a column
// the table lacks) still fails the table, naming it and the index.
func TestTableStepsRefusedFails(t *testing.T) {
	e := newStepsEnv(t, "steps_refused")
	if _, err := e.n.target.DB().ExecContext(e.ctx, "CREATE TABLE `steps_refused`.`t` (id INT PRIMARY KEY, a INT)"); err != nil {
		t.Fatal(err)
	}
	s := meta.TableStep{DB: e.db, Table: "t"}
	id := stepID(s.DB, s.Table)
	rec := meta.PlanTable{DB: s.DB, Table: s.Table, IndexSource: "t-schema.sql", Indexes: []source.Index{
		{Name: "k_b", Kind: source.IndexKey, Columns: []source.IndexColumn{{Name: "b"}}, Def: "KEY `k_b` (`b`)", Deferred: true},
	}}
	if _, err := e.cli.Put(e.ctx, e.n.job.Key(meta.KindTables, id), meta.Encode(rec)); err != nil {
		t.Fatal(err)
	}
	iv := newView[meta.Shard](e.n.job, meta.ImportPool, "n1", e.n.log)
	if err := e.n.tableSteps(e.ctx, e.sess, iv, id, s); err != nil {
		t.Fatal(err)
	}
	resp, err := e.cli.Get(e.ctx, e.n.job.Key(meta.KindStepsFailed, id))
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("no failed record (%v):\n%s", err, e.logText())
	}
	if got := string(resp.Kvs[0].Value); !strings.Contains(got, "`k_b`") || !strings.Contains(got, id) {
		t.Errorf("failed record %s, want it to name %s and `k_b`", got, id)
	}
}

// waitBuildBounds shortens how long waitOtherBuild waits for a build that
// makes no progress, for the test.
func waitBuildBounds(t *testing.T, stall time.Duration) {
	old, oldPoll := otherBuildStall, otherBuildPoll
	otherBuildStall, otherBuildPoll = stall, 50*time.Millisecond
	t.Cleanup(func() { otherBuildStall, otherBuildPoll = old, oldPoll })
}

// An ALTER TABLE of another connection blocked behind a transaction's
// metadata lock is waited for only so long: then the table fails, naming
// the connection; once the build has gone through, nothing is waited for.
func TestWaitOtherBuildBlocked(t *testing.T) {
	waitBuildBounds(t, time.Second)
	e := newStepsEnv(t, "steps_blocked")
	db := e.n.target.DB()
	if _, err := db.ExecContext(e.ctx, "CREATE TABLE `steps_blocked`.`t` (id INT PRIMARY KEY, a INT)"); err != nil {
		t.Fatal(err)
	}
	s := meta.TableStep{DB: e.db, Table: "t"}
	lock, err := db.Conn(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	for _, q := range []string{"BEGIN", "SELECT * FROM `steps_blocked`.`t`"} {
		if _, err := lock.ExecContext(e.ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	alter := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(e.ctx, "ALTER TABLE `steps_blocked`.`t` ADD KEY `k_a` (`a`)")
		alter <- err
	}()
	// It goes through states of its own ("setup", ...) before it waits.
	var b *otherBuild
	for b == nil || !strings.Contains(b.name, "Waiting for table metadata lock") {
		if b, err = e.n.findOtherBuild(e.ctx, s); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b.working {
		t.Fatalf("the ALTER behind the lock counts as working: %+v", b)
	}
	wctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	_, err = e.n.waitOtherBuild(wctx, s)
	var se *stepError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "connection "+b.id+"'s ALTER TABLE") || !strings.Contains(err.Error(), "steps_blocked.t") {
		t.Fatalf("waitOtherBuild: %v, want a step failure naming the table and connection %s", err, b.id)
	}
	t.Logf("gave up: %v", err)
	if _, err := lock.ExecContext(e.ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := <-alter; err != nil {
		t.Fatal(err)
	}
	if waited, err := e.n.waitOtherBuild(wctx, s); waited != "" || err != nil {
		t.Fatalf("after the build: waited for %q, %v", waited, err)
	}
}
