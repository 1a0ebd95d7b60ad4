package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/import/source"
	"storm/internal/etcdserver"
	"storm/internal/gendump"
	"storm/internal/mariadbtest"
	"storm/meta"
)

// The end-to-end tests run real storm processes against a private MariaDB
// and a real etcd, and check the target row by row.
var (
	stormBin string
	testDB   *mariadbtest.Server
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "storm-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	stormBin = filepath.Join(dir, "storm")
	args := []string{"build", "-o", stormBin}
	if os.Getenv("STORM_E2E_RACE") != "" {
		// Real processes under the race detector: one that finds a race
		// exits 66, which fails the test that waits for it.
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "..")...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build storm:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	testDB, err = mariadbtest.Start(ctx, filepath.Join(dir, "mariadb"))
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start MariaDB (install mariadb-server):", err)
		return 1
	}
	defer testDB.Stop()
	return m.Run()
}

// env is one test's job: its etcd, its dump, its database name.
type env struct {
	t         *testing.T
	dir       string
	endpoints []string // etcd.endpoints of the nodes' config
	etcd      *clientv3.Client
	job       meta.Job
	gen       gendump.Options
	extra     map[string]string // config lines added under their sections
	tgt       target            // the database the nodes import into
	// dbs are the test's own pools by DSN (db): tests poll the target
	// every 50 ms, and a pool a call, each keeping its connection until
	// the test ends, ran MariaDB out of connections (Error 1040) in a
	// long wait.
	dbMu sync.Mutex
	dbs  map[string]*sql.DB
}

// target is a database the nodes import into: the private MariaDB unless a
// test says otherwise (tidb_test.go: TiDB).
type target struct {
	port           int
	user, password string
	dsn            func(db string) string
}

func mariaTarget() target {
	return target{port: testDB.Port, user: testDB.User, password: testDB.Password, dsn: testDB.DSN}
}

func newEnv(t *testing.T, gen gendump.Options) *env {
	t.Helper()
	srv, cli := etcdserver.StartT(t)
	return newEnvOn(t, gen, []string{srv.ClientURL}, cli)
}

// newEnvOn is newEnv on an etcd the caller runs (a cluster, a proxy in
// front of it): endpoints go into the nodes' config, cli is the test's own.
func newEnvOn(t *testing.T, gen gendump.Options, endpoints []string, cli *clientv3.Client) *env {
	t.Helper()
	dir := t.TempDir()
	name := strings.ToLower(strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if gen.DB == "" {
		gen.DB = "e2e_" + name
	}
	if gen.Dir == "" {
		gen.Dir = filepath.Join(dir, "dump")
	}
	if gen.Seed == 0 {
		gen.Seed = 1
	}
	if gen.Rows > 0 {
		if _, err := gendump.Generate(gen); err != nil {
			t.Fatalf("generate dump: %v", err)
		}
	}
	job, _ := meta.NewJob("/storm", name)
	return &env{t: t, dir: dir, endpoints: endpoints, etcd: cli, job: job, gen: gen, extra: map[string]string{}, tgt: mariaTarget()}
}

// config writes a storm.toml; overrides are "section.key" = TOML value, or
// "" to leave the key out.
func (e *env) config(overrides map[string]string) string {
	e.t.Helper()
	vals := map[string]string{
		"job.id":             fmt.Sprintf("%q", e.job.ID),
		"etcd.endpoints":     tomlStrings(e.endpoints),
		"etcd.lease-ttl":     "3",
		"source.dir":         fmt.Sprintf("%q", e.gen.Dir),
		"source.csv.header":  fmt.Sprintf("%v", e.gen.Header),
		"target.host":        `"127.0.0.1"`,
		"target.port":        fmt.Sprint(e.tgt.port),
		"target.user":        fmt.Sprintf("%q", e.tgt.user),
		"target.password":    fmt.Sprintf("%q", e.tgt.password),
		"node.workers":       "2",
		"node.start-timeout": `"10s"`,
		"import.shard-size":  "262144",
		"import.batch-size":  "65536",
		"log.level":          `"info"`,
	}
	for k, v := range e.extra {
		vals[k] = v
	}
	for k, v := range overrides {
		vals[k] = v
		if v == "" { // "": leave the key to storm's default
			delete(vals, k)
		}
	}
	sections := map[string][]string{}
	for k, v := range vals {
		i := strings.LastIndex(k, ".")
		sections[k[:i]] = append(sections[k[:i]], k[i+1:]+" = "+v)
	}
	var names []string
	for s := range sections {
		names = append(names, s)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, s := range names {
		sort.Strings(sections[s])
		fmt.Fprintf(&b, "[%s]\n%s\n\n", s, strings.Join(sections[s], "\n"))
	}
	path := filepath.Join(e.dir, fmt.Sprintf("storm-%d.toml", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// tomlStrings formats a TOML array of strings.
func tomlStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// proc is one running storm process.
type proc struct {
	id   string
	cmd  *exec.Cmd
	out  bytes.Buffer // stdout
	logf string
	done chan struct{}
	code int
	mu   sync.Mutex
}

// start runs `storm <args...>` with its log in the test's dir.
func (e *env) start(id string, args ...string) *proc {
	e.t.Helper()
	p := &proc{id: id, done: make(chan struct{}), logf: filepath.Join(e.dir, id+".log")}
	logFile, err := os.OpenFile(p.logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	p.cmd = exec.Command(stormBin, args...)
	p.cmd.Stdout = &lockedWriter{w: &p.out, mu: &p.mu}
	p.cmd.Stderr = logFile
	if err := p.cmd.Start(); err != nil {
		e.t.Fatalf("start %s: %v", id, err)
	}
	go func() {
		err := p.cmd.Wait()
		logFile.Close()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			p.code = ee.ExitCode()
		default:
			p.code = -1
		}
		close(p.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if e.t.Failed() {
			log, _ := os.ReadFile(p.logf)
			e.t.Logf("--- %s log (exit %d) ---\n%s", p.id, p.code, tail(string(log), 60))
		}
	})
	return p
}

// node starts `storm node` with a config and a node id.
func (e *env) node(id, config string, args ...string) *proc {
	return e.start(id, append([]string{"node", "--config", config, "--node-id", id}, args...)...)
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (p *proc) stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) log() string {
	b, _ := os.ReadFile(p.logf)
	return string(b)
}

func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// wait returns the exit code, failing the test after timeout.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("%s still running after %s; log:\n%s", p.id, timeout, tail(p.log(), 40))
		return -1
	}
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// barrier reads the job's barrier (nil if absent).
func (e *env) barrier() *meta.Barrier {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, _, err := meta.ReadBarrier(ctx, e.etcd, e.job)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// waitFor polls cond until it holds.
func (e *env) waitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// count returns how many keys of a kind the job has.
func (e *env) count(k meta.Kind) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := e.etcd.Get(ctx, e.job.Dir(k), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(resp.Count)
}

// claimsOf lists the shards a node owns now.
func (e *env) claimsOf(node string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := e.etcd.Get(ctx, e.job.Dir(meta.KindClaims), clientv3.WithPrefix())
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, kv := range resp.Kvs {
		var c meta.Claim
		if meta.Decode(string(kv.Key), kv.Value, &c) == nil && c.Node == node {
			k, _ := e.job.Parse(string(kv.Key))
			ids = append(ids, k.Name)
		}
	}
	return ids
}

func (e *env) db() *sql.DB {
	e.t.Helper()
	dsn := e.tgt.dsn("")
	e.dbMu.Lock()
	defer e.dbMu.Unlock()
	if db, ok := e.dbs[dsn]; ok {
		return db
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	if e.dbs == nil {
		e.dbs = map[string]*sql.DB{}
	}
	e.dbs[dsn] = db
	return db
}

// checkTarget compares every row of every generated table with the source,
// as sorted multisets of rows, and its indexes with its schema file's.
func (e *env) checkTarget() {
	e.t.Helper()
	db := e.db()
	e.checkIndexes(db)
	for _, ti := range gendump.Tables(e.gen) {
		var want []string
		err := gendump.ExpectedRows(e.gen, ti.Name, func(vals []*string) error {
			want = append(want, encodeRow(vals))
			return nil
		})
		if err != nil {
			e.t.Fatalf("expected rows of %s: %v", ti.Name, err)
		}
		got := readTable(e.t, db, e.gen.DB, ti.Name, ti.Columns)
		sort.Strings(want)
		sort.Strings(got)
		if len(got) != len(want) {
			e.t.Errorf("%s.%s: %d rows, want %d", e.gen.DB, ti.Name, len(got), len(want))
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				e.t.Errorf("%s.%s: row differs (first of sorted rows):\n got %q\nwant %q", e.gen.DB, ti.Name, got[i], want[i])
				break
			}
		}
	}
}

// checkIndexes compares each generated table's indexes in the target with
// those the server itself makes of its schema file, in a scratch database
// (information_schema.STATISTICS): whatever storm deferred must be back.
func (e *env) checkIndexes(db *sql.DB) {
	e.t.Helper()
	ref := e.gen.DB + "_ref"
	mustExec(e.t, db, "DROP DATABASE IF EXISTS `"+ref+"`")
	mustExec(e.t, db, "CREATE DATABASE `"+ref+"`")
	defer mustExec(e.t, db, "DROP DATABASE IF EXISTS `"+ref+"`")
	for _, ti := range gendump.Tables(e.gen) {
		conn, err := db.Conn(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		// The schema file as the test left it (a test may add keys to it),
		// or the generator's statement when the test removed the file.
		stmt := ti.Schema
		if file, err := source.ReadSchemaNamed(filepath.Join(e.gen.Dir, e.gen.DB+"."+ti.Name+"-schema.sql"), ti.Name); err == nil {
			stmt = file
		}
		for _, q := range []string{"USE `" + ref + "`", strings.TrimSuffix(strings.TrimSpace(stmt), ";")} {
			if _, err := conn.ExecContext(context.Background(), q); err != nil {
				e.t.Fatalf("%s: %v", q, err)
			}
		}
		conn.Close()
		want, got := tableIndexes(e.t, db, ref, ti.Name), tableIndexes(e.t, db, e.gen.DB, ti.Name)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			e.t.Errorf("%s.%s: indexes differ from the schema file's:\n got %q\nwant %q", e.gen.DB, ti.Name, got, want)
		}
	}
}

// tableIndexes lists a table's index parts: name, uniqueness, position,
// column, prefix, type, comment.
func tableIndexes(t *testing.T, db *sql.DB, schema, table string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, COALESCE(SUB_PART, 0), INDEX_TYPE, INDEX_COMMENT
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX`, schema, table)
	if err != nil {
		t.Fatalf("indexes of %s.%s: %v", schema, table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name, col, typ, comment string
		var nonUnique, seq, sub int
		if err := rows.Scan(&name, &nonUnique, &seq, &col, &sub, &typ, &comment); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s nonunique=%d %d:%s(%d) %s %q", name, nonUnique, seq, col, sub, typ, comment))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readTable(t *testing.T, db *sql.DB, schema, table string, cols []string) []string {
	t.Helper()
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = "`" + c + "`"
	}
	rows, err := db.Query(fmt.Sprintf("SELECT %s FROM `%s`.`%s`", strings.Join(q, ","), schema, table))
	if err != nil {
		t.Fatalf("read %s.%s: %v", schema, table, err)
	}
	defer rows.Close()
	var out []string
	raw := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	vals := make([]*string, len(cols))
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, r := range raw {
			if r == nil {
				vals[i] = nil
			} else {
				s := string(r)
				vals[i] = &s
			}
		}
		out = append(out, encodeRow(vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func encodeRow(vals []*string) string {
	var b strings.Builder
	for _, v := range vals {
		if v == nil {
			b.WriteString("N|")
		} else {
			fmt.Fprintf(&b, "%d:%s|", len(*v), *v)
		}
	}
	return b.String()
}

func mustExec(t *testing.T, db interface {
	Exec(string, ...any) (sql.Result, error)
}, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
