package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/internal/etcdserver"
	"storm/internal/gendump"
	"storm/jobctl"
	"storm/meta"
)

// The operator's view: storm status, storm job, a node's /metrics and
// /status, against real nodes.

// run starts `storm <args...>`, waits for it and returns its exit code and
// stdout.
func (e *env) run(id string, args ...string) (int, string) {
	e.t.Helper()
	p := e.start(id, args...)
	code := p.wait(e.t, 30*time.Second)
	return code, p.stdout()
}

// statusJSON is `storm status --json`, decoded.
func (e *env) statusJSON(cfg string) jobctl.Status {
	e.t.Helper()
	code, out := e.run("status-json", "status", "--config", cfg, "--json")
	if code != 0 {
		e.t.Fatalf("status --json exited %d: %s", code, out)
	}
	var st jobctl.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st
}

// A job failed by a bad row is re-opened with `storm job retry` once the
// file is fixed: done shards stay done, the failed one is imported again,
// the job succeeds with exactly the source rows. Around it: job list, show,
// retry of a succeeded job, forget.
func TestE2EOpsRetryBadRow(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 6_000, Format: "csv", Header: true, Tables: []string{"customers", "orders"}})
	files, _ := filepath.Glob(filepath.Join(e.gen.Dir, "*.customers.*.csv"))
	if len(files) == 0 {
		t.Fatal("no customers csv generated")
	}
	orig, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(orig), "\n")
	_, rest, _ := strings.Cut(lines[3], ",")
	lines[3] = "not-a-number," + rest
	if err := os.WriteFile(files[0], []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := e.config(nil)
	if code := e.node("n1", cfg).wait(t, 2*time.Minute); code != 1 {
		t.Fatalf("n1 exited %d, want 1", code)
	}
	if b := e.barrier(); b == nil || b.Status != meta.StatusFailed {
		t.Fatalf("barrier %+v", b)
	}
	doneBefore := e.count(meta.KindDone)
	// The failed shard, and any the node had not started when the failure
	// stopped new work (how many depends on timing).
	left := e.count(meta.KindShards) - doneBefore

	// job list and show see the failed job.
	code, out := e.run("list", "job", "list", "--config", cfg)
	if code != 0 || !strings.Contains(out, e.job.ID) || !strings.Contains(out, "failed") || !strings.Contains(out, "STATE") {
		t.Fatalf("job list exited %d:\n%s", code, out)
	}
	code, out = e.run("show", "job", "show", e.job.ID, "--config", cfg)
	for _, want := range []string{"finished (failed)", "1 failed", "failed shard", files[0] + ":4"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("job show exited %d, lacks %q:\n%s", code, want, out)
		}
	}

	// Retrying without a fix would fail again; fix the file first.
	if err := os.WriteFile(files[0], orig, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = e.run("retry", "job", "retry", "--config", cfg)
	if code != 0 || !strings.Contains(out, "re-opened") || !strings.Contains(out, "1 failed shard(s)") {
		t.Fatalf("job retry exited %d:\n%s", code, out)
	}
	if b := e.barrier(); b != nil {
		t.Fatalf("barrier still there after retry: %+v", b)
	}
	for kind, want := range map[meta.Kind]int{meta.KindFailed: 0, meta.KindDone: doneBefore, meta.KindVerifyRanges: 0, meta.KindVerifyDone: 0} {
		if got := e.count(kind); got != want {
			t.Errorf("after retry: %d %s keys, want %d", got, kind, want)
		}
	}
	for _, p := range []meta.Phase{meta.PhaseVerifyPlan, meta.PhaseVerify, meta.PhaseFinalize} {
		if resp, err := e.etcd.Get(t.Context(), e.job.PhaseMarker(p)); err != nil || len(resp.Kvs) != 0 {
			t.Errorf("phase marker %s still there after retry (%v)", p, err)
		}
	}
	if st := e.statusJSON(cfg); st.State != jobctl.StateIdle || st.Pending != left || st.Done != doneBefore {
		t.Errorf("status after retry: state %s, %d pending, %d done; want idle, %d, %d", st.State, st.Pending, st.Done, left, doneBefore)
	}

	n2 := e.node("n2", cfg)
	if code := n2.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("n2 exited %d after the retry", code)
	}
	b := e.barrier()
	if b == nil || b.Status != meta.StatusSucceeded {
		t.Fatalf("barrier after retry %+v", b)
	}
	if got := strings.Count(n2.log(), "shard done"); got != left {
		t.Errorf("n2 imported %d shards, want only the %d the failed run left (done shards stay done)", got, left)
	}
	e.checkTarget()

	// A succeeded job can't be retried.
	if code, out := e.run("retry-ok", "job", "retry", "--config", cfg); code != 2 {
		t.Errorf("retry of a succeeded job exited %d: %s", code, out)
	}
	// forget wants --yes, then deletes every key.
	if code, _ := e.run("forget-no", "job", "forget", "--config", cfg); code != 2 || e.countAll() == 0 {
		t.Fatalf("forget without --yes exited %d, %d keys left", code, e.countAll())
	}
	code, out = e.run("forget", "job", "forget", e.job.ID, "--yes", "--config", cfg)
	if code != 0 || !strings.Contains(out, "forgotten") {
		t.Fatalf("forget exited %d:\n%s", code, out)
	}
	if n := e.countAll(); n != 0 {
		t.Fatalf("%d keys left after forget", n)
	}
	if code, out := e.run("list-empty", "job", "list", "--config", cfg); code != 0 || strings.Contains(out, e.job.ID) {
		t.Errorf("job list after forget exited %d:\n%s", code, out)
	}
}

// readStatus reads the job's status in-process, for polling.
func (e *env) readStatus() *jobctl.Status {
	e.t.Helper()
	st, err := jobctl.ReadStatus(e.t.Context(), e.etcd, e.job)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// countAll counts the job's keys.
func (e *env) countAll() int {
	e.t.Helper()
	resp, err := e.etcd.Get(e.t.Context(), e.job.Root(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(resp.Count)
}

// A failed plan (a target table not empty) is re-opened too: the plan
// marker and its shards go, the plan runs again.
func TestE2EOpsRetryFailedPlan(t *testing.T) {
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
	cfg := e.config(nil)
	if code := e.node("n1", cfg).wait(t, time.Minute); code != 1 {
		t.Fatalf("n1 exited %d, want 1", code)
	}
	if _, err := conn.ExecContext(t.Context(), "DELETE FROM customers"); err != nil {
		t.Fatal(err)
	}
	code, out := e.run("retry", "job", "retry", "--config", cfg)
	if code != 0 || !strings.Contains(out, "failed: it runs again") {
		t.Fatalf("job retry exited %d:\n%s", code, out)
	}
	if code := e.node("n2", cfg).wait(t, time.Minute); code != 0 {
		t.Fatalf("n2 exited %d after the retry", code)
	}
	if b := e.barrier(); b == nil || b.Status != meta.StatusSucceeded {
		t.Fatalf("barrier after retry %+v", b)
	}
	e.checkTarget()
}

// A running node serves /metrics, /status and /debug/pprof; storm status
// --json and --watch, and forget's refusal, see it live. The test holds one
// shard on a lease of its own, so the node stays in its import, with rows
// written, for as long as the test looks; then it lets the shard go.
func TestE2EOpsMetricsAndStatus(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 20_000, Format: "csv", Header: true, FilesPerTable: 2})
	port, err := etcdserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := e.config(map[string]string{"node.workers": "1", "node.status-addr": fmt.Sprintf("%q", addr)})
	watch := e.start("watch", "status", "--config", cfg, "--watch", "--interval", "200ms")
	n1 := e.node("n1", cfg)

	lease, err := e.etcd.Grant(t.Context(), 60)
	if err != nil {
		t.Fatal(err)
	}
	var held string
	e.waitFor("a shard the test can hold", 60*time.Second, func() bool {
		resp, err := e.etcd.Get(t.Context(), e.job.Dir(meta.KindShards), clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		for i := len(resp.Kvs) - 1; i >= 0; i-- {
			k, _ := e.job.Parse(string(resp.Kvs[i].Key))
			if _, ok, err := meta.ClaimShard(t.Context(), e.etcd, e.job, k.Name, "test-holder", lease.ID); err == nil && ok {
				held = k.Name
				return true
			}
		}
		return false
	})
	t.Logf("holding shard %s", held)

	// The node imports every other shard, then waits for ours.
	e.waitFor("every other shard done", 90*time.Second, func() bool {
		st := e.readStatus()
		return st.Shards > 1 && st.Done == st.Shards-1
	})
	metrics := scrape(t, "http://"+addr+"/metrics")
	if v := metrics["storm_rows_written_total"]; v <= 0 {
		t.Errorf("storm_rows_written_total = %v", v)
	}
	for name, want := range map[string]float64{
		`storm_phase{phase="import"}`: 1, `storm_phase{phase="plan"}`: 0,
		"storm_takeovers_total": 0, `storm_node_info{storm_job="` + e.job.ID + `",storm_node="n1"}`: 1,
	} {
		if got, ok := metrics[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	for _, name := range []string{"storm_bytes_written_total", "storm_batches_total", "storm_claims_total",
		`storm_etcd_request_duration_seconds_count{op="claim"}`, "storm_lease_remaining_seconds"} {
		if metrics[name] <= 0 {
			t.Errorf("%s = %v, want > 0", name, metrics[name])
		}
	}
	if got := metrics["storm_lease_ttl_seconds"]; got != 3 {
		t.Errorf("storm_lease_ttl_seconds = %v, want the configured 3", got)
	}

	// /status is the document of storm status --json.
	var served jobctl.Status
	getJSON(t, "http://"+addr+"/status", &served)
	st := e.statusJSON(cfg)
	for _, s := range []jobctl.Status{served, st} {
		if s.Version != jobctl.StatusVersion || s.Job != e.job.ID || s.State != jobctl.StateRunning || s.Phase != "import" ||
			s.Claimed != 1 || s.Pending != 0 || s.Owners["test-holder"] != 1 || s.Total <= 0 || s.Rows <= 0 ||
			s.CreatedAt.IsZero() || s.ETA == nil || s.Throughput.Average.RowsPerSec <= 0 || s.Barrier != nil {
			t.Errorf("status while holding a shard: %+v", s)
		}
		if len(s.Nodes) != 1 || s.Nodes[0].ID != "n1" || s.Nodes[0].ShardsDone != s.Done || s.Nodes[0].Workers != 1 {
			t.Errorf("nodes %+v", s.Nodes)
		}
	}
	// Each table's state: the held shard's table imports; the others
	// have done their steps (docs/table-pipeline.md) and wait for verify.
	heldTable := ""
	if resp, err := e.etcd.Get(t.Context(), e.job.Shard(held)); err == nil && len(resp.Kvs) == 1 {
		var sh meta.Shard
		if meta.Decode("shard", resp.Kvs[0].Value, &sh) == nil {
			heldTable = sh.Table
		}
	}
	e.waitFor("the other tables' steps", 60*time.Second, func() bool {
		for _, ts := range e.readStatus().Tables {
			if ts.Table != heldTable && ts.State != jobctl.TableVerifying {
				return false
			}
		}
		return true
	})
	for _, s := range []jobctl.Status{*e.readStatus(), e.statusJSON(cfg)} {
		if len(s.Tables) != 4 {
			t.Errorf("tables %+v", s.Tables)
		}
		for _, ts := range s.Tables {
			switch {
			case ts.Table == heldTable && (ts.State != jobctl.TableImporting || ts.ShardsDone != ts.Shards-1):
				t.Errorf("table of the held shard: %+v", ts)
			case ts.Table != heldTable && (ts.State != jobctl.TableVerifying || len(ts.Steps) == 0):
				t.Errorf("table whose shards are done: %+v", ts)
			}
		}
	}
	metrics = scrape(t, "http://"+addr+"/metrics")
	for _, ts := range e.readStatus().Tables {
		name := `storm_table_step_seconds{step="analyze",table="` + ts.DB + "." + ts.Table + `"}`
		if _, ok := metrics[name]; ok != (ts.Table != heldTable) {
			t.Errorf("%s present: %v", name, ok)
		}
		state := jobctl.TableVerifying
		if ts.Table == heldTable {
			state = jobctl.TableImporting
		}
		if name := `storm_table_state{state="` + state + `",table="` + ts.DB + "." + ts.Table + `"}`; metrics[name] != 1 {
			t.Errorf("%s = %v, want 1", name, metrics[name])
		}
	}
	if resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline"); err != nil || resp.StatusCode != 200 {
		t.Errorf("pprof: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// The raw JSON names its fields as documented.
	_, raw := e.run("status-raw", "status", "--config", cfg, "--json")
	for _, field := range []string{`"state"`, `"shards_in_work_by_node"`, `"throughput"`, `"bytes_per_sec"`, `"eta_seconds"`,
		`"heartbeat_age_seconds"`, `"shards_in_work"`, `"total_bytes"`, `"read_at"`, `"created_at"`} {
		if !strings.Contains(raw, field) {
			t.Errorf("status --json lacks %s", field)
		}
	}

	// The heartbeat refreshes the node's record with its phase and address.
	e.waitFor("a heartbeat", 15*time.Second, func() bool {
		st := e.readStatus()
		return len(st.Nodes) == 1 && !st.Nodes[0].Heartbeat.IsZero()
	})
	if n := e.statusJSON(cfg).Nodes[0]; n.Phase != "import" || n.StatusAddr != addr || n.RowsWritten <= 0 {
		t.Errorf("heartbeat record %+v", n.NodeRecord)
	}

	// forget refuses a live job, even with --force.
	if code, out := e.run("forget-live", "job", "forget", "--yes", "--force", "--config", cfg); code != 2 {
		t.Errorf("forget of a live job exited %d: %s", code, out)
	}
	if e.countAll() == 0 {
		t.Fatal("forget deleted a live job")
	}

	if _, err := e.etcd.Revoke(t.Context(), lease.ID); err != nil {
		t.Fatal(err)
	}
	if code := n1.wait(t, time.Minute); code != 0 {
		t.Fatalf("n1 exited %d", code)
	}
	if code := watch.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("status --watch exited %d:\n%s", code, watch.stdout())
	}
	if out := watch.stdout(); !strings.Contains(out, "import:") || !strings.Contains(out, "finished (succeeded)") {
		t.Errorf("status --watch printed:\n%s", out)
	}
	if !strings.Contains(n1.log(), "phase=import") || !strings.Contains(n1.log(), "serving /metrics") {
		t.Errorf("node log lacks the phase attribute or the server line:\n%s", tail(n1.log(), 20))
	}
	final := e.statusJSON(cfg)
	if final.State != "succeeded" || final.ExitCode == nil || *final.ExitCode != 0 || final.Percent != 100 || final.ETA != nil {
		t.Errorf("final status %+v", final)
	}
	for _, ts := range final.Tables {
		if ts.State != jobctl.TableDone || len(ts.Steps) == 0 {
			t.Errorf("final table state %+v", ts)
		}
	}
	if _, out := e.run("status-final", "status", "--config", cfg); !strings.Contains(out, "tables: 4 of 4 done") {
		t.Errorf("status printed:\n%s", out)
	}
	e.checkTarget()
}

// scrape reads a Prometheus text page into name{labels} -> value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("get %s: %s %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("get %s: %v\n%s", url, err, body)
	}
}
