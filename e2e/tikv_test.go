package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/import_sstpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/import/tikv"
	"storm/internal/gendump"
	"storm/internal/tikvfake"
	"storm/meta"
)

// The TiDB cluster of these tests is internal/tikvfake's: a PD serving its
// gRPC and HTTP APIs on one port, as a real PD does, and TiKV import
// services, all in this process and recording what the storm processes ask
// of them. The rows go to the harness's MariaDB.

const (
	schedulersPath = "/pd/api/v1/schedulers"
	schedulePath   = "/pd/api/v1/config/schedule"
	// keeperElection is node/tikv.go's election of the keeper.
	keeperElection = "tikv-keeper"
)

var (
	balanceSchedulers = []string{"balance-hot-region-scheduler", "balance-leader-scheduler", "balance-region-scheduler"}
	modeImport        = import_sstpb.SwitchMode_Import
	modeNormal        = import_sstpb.SwitchMode_Normal
)

// tidbCluster is three TiKV stores, a tombstone and a TiFlash store (both
// must be left alone), the three balance schedulers and one that is not
// storm's to pause, and a schedule config whose merge limit a float64 could
// not carry through etcd and back.
func tidbCluster(t *testing.T) *tikvfake.Cluster {
	return tikvfake.StartCluster(t, tikvfake.ClusterConfig{
		Stores: []tikvfake.StoreSpec{
			{ID: 1}, {ID: 2}, {ID: 3},
			{ID: 4, State: metapb.StoreState_Tombstone},
			{ID: 5, Labels: tikvfake.TiFlash()},
		},
		Schedulers: append(slices.Clone(balanceSchedulers), "evict-slow-store-scheduler"),
		Config:     scheduleBefore(),
		SharedPort: true,
	})
}

func scheduleBefore() map[string]any {
	conf := tikvfake.DefaultSchedule()
	conf["max-merge-region-keys"] = json.Number("9007199254740993") // 2^53+1
	return conf
}

// The requests of each step, as the fake PD HTTP API records them.
func pauseRequests(delay int) []string {
	var out []string
	for _, s := range balanceSchedulers {
		out = append(out, fmt.Sprintf(`POST %s/%s {"delay":%d}`, schedulersPath, s, delay))
	}
	return out
}

func prepareRequests(ttl int) []string {
	out := []string{"GET " + schedulersPath, "GET " + schedulersPath + "?status=paused", "GET " + schedulePath}
	out = append(out, pauseRequests(ttl)...)
	return append(out, `POST `+schedulePath+` {"max-merge-region-keys":0,"max-merge-region-size":0}`)
}

func restoreRequests() []string {
	// The saved values, byte for byte: 2^53+1 went through etcd as JSON.
	return append(pauseRequests(0), `POST `+schedulePath+` {"max-merge-region-keys":9007199254740993,"max-merge-region-size":20}`)
}

// pdLog is the fake PD HTTP API's log cut into the steps of a job:
// prepare's requests, the keeper's rounds, finalize's restore.
type pdLog struct {
	prepare []tikvfake.Request
	rounds  [][]tikvfake.Request
	restore []tikvfake.Request
	partial []tikvfake.Request // a round still arriving, or garbage
}

func cutLog(reqs []tikvfake.Request, ttl int, finished bool) (pdLog, error) {
	var l pdLog
	strs := make([]string, len(reqs))
	for i, r := range reqs {
		strs[i] = r.String()
	}
	want := prepareRequests(ttl)
	if len(strs) < len(want) {
		l.partial = reqs
		return l, nil
	}
	if !slices.Equal(strs[:len(want)], want) {
		return l, fmt.Errorf("prepare's requests:\n got  %q\n want %q", strs[:len(want)], want)
	}
	l.prepare, reqs, strs = reqs[:len(want)], reqs[len(want):], strs[len(want):]
	if finished {
		want := restoreRequests()
		if len(strs) < len(want) || !slices.Equal(strs[len(strs)-len(want):], want) {
			return l, fmt.Errorf("the last requests are not a restore %q:\n%q", want, strs)
		}
		l.restore = reqs[len(reqs)-len(want):]
		reqs, strs = reqs[:len(reqs)-len(want)], strs[:len(strs)-len(want)]
	}
	round := pauseRequests(ttl)
	for len(strs) >= len(round) && slices.Equal(strs[:len(round)], round) {
		l.rounds = append(l.rounds, reqs[:len(round)])
		reqs, strs = reqs[len(round):], strs[len(round):]
	}
	l.partial = reqs
	if len(strs) > 0 && (finished || !slices.Equal(strs, round[:len(strs)])) {
		return l, fmt.Errorf("requests that are no keeper round %q:\n%q", round, strs)
	}
	return l, nil
}

// by is the node a request came from: storm sends "storm/<node>".
func by(r tikvfake.Request) string { return strings.TrimPrefix(r.UserAgent, "storm/") }

// roundsBy counts the complete rounds a node sent.
func (l pdLog) roundsBy(node string) int {
	n := 0
	for _, r := range l.rounds {
		if by(r[0]) == node {
			n++
		}
	}
	return n
}

// keeper is the node leading the keeper's election: its key's value.
func (e *env) keeper() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := e.etcd.Get(ctx, e.job.ElectionName(keeperElection)+"/", clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		e.t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

func (e *env) marker(p meta.Phase) *meta.PhaseMarker {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := e.etcd.Get(ctx, e.job.PhaseMarker(p))
	if err != nil {
		e.t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	var m meta.PhaseMarker
	if err := meta.Decode(string(resp.Kvs[0].Key), resp.Kvs[0].Value, &m); err != nil {
		e.t.Fatal(err)
	}
	return &m
}

// lastDone is when the last shard was recorded done.
func (e *env) lastDone() time.Time {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := e.etcd.Get(ctx, e.job.Dir(meta.KindDone), clientv3.WithPrefix())
	if err != nil {
		e.t.Fatal(err)
	}
	var last time.Time
	for _, kv := range resp.Kvs {
		var d meta.Done
		if err := meta.Decode(string(kv.Key), kv.Value, &d); err != nil {
			e.t.Fatal(err)
		}
		if d.At.After(last) {
			last = d.At
		}
	}
	return last
}

func (e *env) saved() *tikv.Saved {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := e.etcd.Get(ctx, e.job.TiKVSaved())
	if err != nil {
		e.t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	var s tikv.Saved
	if err := meta.Decode(e.job.TiKVSaved(), resp.Kvs[0].Value, &s); err != nil {
		e.t.Fatal(err)
	}
	return &s
}

// stallWrites creates the job's tables from the dump's schema files and
// holds a READ lock on them: the plan reads them (they exist and are
// empty), every batch of the import waits for the lock, and so shards stay
// in work for as long as the test needs; release lets the import go on.
func (e *env) stallWrites() (release func()) {
	e.t.Helper()
	ctx := context.Background()
	conn, err := e.db().Conn(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	exec := func(q string) {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			e.t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE DATABASE `" + e.gen.DB + "`")
	exec("USE `" + e.gen.DB + "`")
	var locks []string
	for _, ti := range gendump.Tables(e.gen) {
		schema, err := os.ReadFile(filepath.Join(e.gen.Dir, e.gen.DB+"."+ti.Name+"-schema.sql"))
		if err != nil {
			e.t.Fatal(err)
		}
		exec(string(schema))
		locks = append(locks, "`"+e.gen.DB+"`.`"+ti.Name+"` READ")
	}
	exec("LOCK TABLES " + strings.Join(locks, ", "))
	done := false
	release = func() {
		if !done {
			done = true
			_, _ = conn.ExecContext(ctx, "UNLOCK TABLES")
			conn.Close()
		}
	}
	e.t.Cleanup(release)
	return release
}

// checkStores checks every TiKV store's switches: import at prepare
// (before prepare paused a scheduler), import again with each keeper round,
// normal once, after the last shard and before the schedulers were resumed.
// The tombstone and the TiFlash store are never asked.
func checkStores(t *testing.T, c *tikvfake.Cluster, l pdLog, lastDone time.Time) {
	t.Helper()
	for _, id := range []uint64{4, 5} {
		if got := c.Stores[id].Modes(); len(got) != 0 {
			t.Errorf("store %d (tombstone or TiFlash) was switched: %v", id, got)
		}
	}
	for _, id := range []uint64{1, 2, 3} {
		sw := c.Stores[id].Switches()
		want := slices.Repeat([]import_sstpb.SwitchMode{modeImport}, 1+len(l.rounds))
		want = append(want, modeNormal)
		if got := c.Stores[id].Modes(); !slices.Equal(got, want) {
			t.Errorf("store %d modes:\n got  %v\n want %v (prepare, %d keeper rounds, restore)", id, got, want, len(l.rounds))
			continue
		}
		if sw[0].Seq > l.prepare[3].Seq {
			t.Errorf("store %d switched to import after prepare paused schedulers", id)
		}
		for i, r := range l.rounds {
			// Keep switches the stores, then pauses the schedulers.
			if sw[1+i].Seq > r[0].Seq || (i > 0 && sw[1+i].Seq < l.rounds[i-1][2].Seq) {
				t.Errorf("store %d: switch #%d is not part of keeper round %d", id, i+2, i+1)
			}
		}
		last := sw[len(sw)-1]
		if !last.At.After(lastDone) {
			t.Errorf("store %d switched to normal at %s, before the last shard was done at %s", id, last.At, lastDone)
		}
		if last.Seq > l.restore[0].Seq {
			t.Errorf("store %d switched to normal after the schedulers were resumed", id)
		}
	}
}

// checkPDEnd checks PD's final state: storm's schedulers resumed, the other
// one untouched, the schedule config as it was.
func checkPDEnd(t *testing.T, c *tikvfake.Cluster) {
	t.Helper()
	paused, conf, _ := c.HTTP.State()
	want := map[string]int{}
	for _, s := range balanceSchedulers {
		want[s] = 0
	}
	if fmt.Sprint(paused) != fmt.Sprint(want) {
		t.Errorf("schedulers paused at the end: %v, want %v", paused, want)
	}
	got, _ := json.Marshal(conf)
	exp, _ := json.Marshal(scheduleBefore())
	if string(got) != string(exp) {
		t.Errorf("schedule config at the end:\n got  %s\n want %s", got, exp)
	}
	if n := c.PD.Called()["GetAllStores"]; n != 1 {
		t.Errorf("PD listed the stores %d times, want once (at prepare)", n)
	}
}

// Three nodes import while PD's fakes record every request: prepare
// switches the stores and pauses the schedulers, the keeper re-asserts
// both every second (tidb.pause-ttl = 3), the keeper's node is SIGKILLed
// and another node's keeper takes over, and after the last shard finalize
// switches the stores back, resumes the schedulers and puts the schedule
// config back byte for byte.
func TestE2ETiKVKeeperHandover(t *testing.T) {
	start := time.Now()
	c := tidbCluster(t)
	e := newEnv(t, gendump.Options{Rows: 20_000, Format: "mixed", FilesPerTable: 2, Header: true})
	release := e.stallWrites()
	const ttl = 3
	cfg := e.config(map[string]string{
		"tidb.pd-addrs":  tomlStrings([]string{c.PD.URL}),
		"tidb.pause-ttl": fmt.Sprint(ttl),
		// The plan would drop the locked tables' deferred indexes, and
		// wait for the locks: the import must begin and stall instead.
		"import.defer-indexes": `"off"`,
	})
	procs := map[string]*proc{}
	for _, id := range []string{"n1", "n2", "n3"} {
		procs[id] = e.node(id, cfg)
	}

	// The import is stalled on the table locks, so shards stay in work:
	// wait for two rounds of the keeper, and kill it right after a round,
	// so that no round is cut in half.
	var k1 string
	var log pdLog
	e.waitFor("two keeper rounds", 60*time.Second, func() bool {
		var err error
		reqs := c.HTTP.Requests()
		if log, err = cutLog(reqs, ttl, false); err != nil {
			t.Fatal(err)
		}
		k1 = e.keeper()
		return k1 != "" && log.roundsBy(k1) >= 2 && len(log.partial) == 0 &&
			by(reqs[len(reqs)-1]) == k1 && time.Since(reqs[len(reqs)-1].At) < 500*time.Millisecond
	})
	if e.count(meta.KindDone) == e.count(meta.KindShards) {
		t.Fatal("the import ended although its tables are locked")
	}
	killedAt := time.Now()
	procs[k1].kill()
	t.Logf("killed the keeper %s after %d rounds, %.1fs in", k1, log.roundsBy(k1), time.Since(start).Seconds())

	var k2 string
	e.waitFor("another node's keeper to take over and keep twice", 30*time.Second, func() bool {
		var err error
		if log, err = cutLog(c.HTTP.Requests(), ttl, false); err != nil {
			t.Fatal(err)
		}
		k2 = e.keeper()
		return k2 != "" && k2 != k1 && log.roundsBy(k2) >= 2
	})
	t.Logf("%s keeps; releasing the tables %.1fs in", k2, time.Since(start).Seconds())
	release()

	for id, p := range procs {
		if id == k1 {
			continue
		}
		if code := p.wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("%s exited %d", id, code)
		}
	}
	b := e.barrier()
	if b == nil || b.Status != meta.StatusSucceeded {
		t.Fatalf("barrier %+v", b)
	}
	e.checkTarget()

	log, err := cutLog(c.HTTP.Requests(), ttl, true)
	if err != nil {
		t.Fatal(err)
	}
	prep, fin := e.marker(meta.PhasePrepare), e.marker(meta.PhaseFinalize)
	for _, r := range log.prepare {
		if by(r) != prep.By {
			t.Errorf("prepare's request %q came from %q, not the prepare leader %s", r, r.UserAgent, prep.By)
		}
	}
	for _, r := range log.restore {
		if by(r) != fin.By {
			t.Errorf("restore's request %q came from %q, not the finalize leader %s", r, r.UserAgent, fin.By)
		}
	}
	// The rounds: k1's, before it died, then k2's; no one else's, and each
	// round from one node.
	var who []string
	for i, r := range log.rounds {
		n := by(r[0])
		if by(r[1]) != n || by(r[2]) != n {
			t.Errorf("round %d came from several nodes: %q %q %q", i+1, r[0].UserAgent, r[1].UserAgent, r[2].UserAgent)
		}
		if (n == k1) != r[0].At.Before(killedAt) || (n != k1 && n != k2) {
			t.Errorf("round %d from %s at %s; %s was killed at %s, %s took over", i+1, n, r[0].At, k1, killedAt, k2)
		}
		who = append(who, n)
	}
	t.Logf("keeper rounds: %v", who)
	if log.roundsBy(k1) < 2 || log.roundsBy(k2) < 2 {
		t.Errorf("keeper rounds %v: want at least 2 by %s and 2 by %s", who, k1, k2)
	}
	if n := len(log.rounds); n > 0 && !log.rounds[n-1][2].At.Before(log.restore[0].At) {
		t.Error("a keeper round ended after the restore began")
	}
	checkStores(t, c, log, e.lastDone())
	checkPDEnd(t, c)

	// What prepare saved, and what the barrier says was put back.
	s := e.saved()
	if s == nil || len(s.Stores) != 3 || !slices.Equal(s.Schedulers, balanceSchedulers) ||
		fmt.Sprint(s.Config) != "map[max-merge-region-keys:9007199254740993 max-merge-region-size:20]" {
		t.Errorf("tikv/saved %+v", s)
	}
	for i, st := range s.Stores {
		if st.ID != uint64(i+1) || st.Address != c.Stores[st.ID].Addr {
			t.Errorf("saved store %+v, want id %d at %s", st, i+1, c.Stores[uint64(i+1)].Addr)
		}
	}
	wantNote := "restored: 3 TiKV store(s) to normal mode (1,2,3); resumed " + strings.Join(balanceSchedulers, ",") +
		"; schedule config max-merge-region-keys=9007199254740993,max-merge-region-size=20"
	if b.TiKV != wantNote {
		t.Errorf("barrier tikv note:\n got  %q\n want %q", b.TiKV, wantNote)
	}
	if k := e.keeper(); k != "" {
		t.Errorf("keeper %s still registered after the job", k)
	}
	if !strings.Contains(procs[k2].log(), "tikv keeper: leading") {
		t.Errorf("%s's log does not say it took over as keeper", k2)
	}
	t.Logf("took %.1fs", time.Since(start).Seconds())
}

// A job that fails mid-import (a value its column can't hold) still
// restores everything at finalize, and the barrier says so.
func TestE2ETiKVFailedJobRestores(t *testing.T) {
	c := tidbCluster(t)
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
	_, rest, _ := strings.Cut(lines[3], ",")
	lines[3] = "not-a-number," + rest
	if err := os.WriteFile(files[0], []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	const ttl = 3
	cfg := e.config(map[string]string{
		"tidb.pd-addrs":  tomlStrings([]string{c.PD.URL}),
		"tidb.pause-ttl": fmt.Sprint(ttl),
		// The plan would drop the locked tables' deferred indexes, and
		// wait for the locks: the import must begin and stall instead.
		"import.defer-indexes": `"off"`,
	})
	n1, n2 := e.node("n1", cfg), e.node("n2", cfg)
	for _, p := range []*proc{n1, n2} {
		if code := p.wait(t, 2*time.Minute); code != 1 {
			t.Fatalf("%s exited %d, want 1", p.id, code)
		}
	}
	b := e.barrier()
	if b == nil || b.Status != meta.StatusFailed || len(b.Failed) != 1 || b.Failed[0].Line != 4 {
		t.Fatalf("barrier %+v", b)
	}
	if !strings.HasPrefix(b.TiKV, "restored: 3 TiKV store(s) to normal mode (1,2,3); resumed ") {
		t.Errorf("barrier tikv note %q", b.TiKV)
	}
	// A DBA waiting on the job sees it too.
	w := e.start("wait", "wait", "--config", cfg)
	if code := w.wait(t, 30*time.Second); code != 1 || !strings.Contains(w.stdout(), "\ntikv: "+b.TiKV+"\n") {
		t.Errorf("storm wait exited %d, printed %q", code, w.stdout())
	}
	log, err := cutLog(c.HTTP.Requests(), ttl, true)
	if err != nil {
		t.Fatal(err)
	}
	checkStores(t, c, log, e.lastDone())
	checkPDEnd(t, c)
}
