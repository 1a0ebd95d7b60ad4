package node

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/import_sstpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/import/tikv"
	"storm/internal/etcdserver"
	"storm/internal/gendump"
	"storm/internal/tikvfake"
	"storm/meta"
)

func TestMergeSaved(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first := tikv.Saved{
		Stores:     []tikv.Store{{ID: 2, Address: "old:20160"}, {ID: 1, Address: "a:20160"}},
		Schedulers: []string{"balance-region-scheduler"},
		Config:     map[string]any{"max-merge-region-keys": json.Number("200000")},
		At:         t0,
	}
	// The second Prepare found the first one's changes.
	later := tikv.Saved{
		Stores:     []tikv.Store{{ID: 2, Address: "new:20160"}, {ID: 3, Address: "c:20160"}},
		Schedulers: []string{"balance-leader-scheduler"},
		Config:     map[string]any{"max-merge-region-keys": json.Number("0"), "max-merge-region-size": json.Number("20")},
		At:         t0.Add(time.Minute),
	}
	got := mergeSaved(&first, later)
	want := tikv.Saved{
		Stores:     []tikv.Store{{ID: 1, Address: "a:20160"}, {ID: 2, Address: "new:20160"}, {ID: 3, Address: "c:20160"}},
		Schedulers: []string{"balance-leader-scheduler", "balance-region-scheduler"},
		Config:     map[string]any{"max-merge-region-keys": json.Number("200000"), "max-merge-region-size": json.Number("20")},
		At:         t0,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged:\n got  %+v\n want %+v", got, want)
	}
	if !reflect.DeepEqual(first.Stores, []tikv.Store{{ID: 2, Address: "old:20160"}, {ID: 1, Address: "a:20160"}}) {
		t.Errorf("merge changed its input: %+v", first.Stores)
	}
	if got := mergeSaved(nil, later); !reflect.DeepEqual(got, later) {
		t.Errorf("nothing saved before: %+v", got)
	}
	if got := mergeSaved(&tikv.Saved{At: t0}, tikv.Saved{At: t0.Add(time.Second)}); got.Config != nil || !got.At.Equal(t0) {
		t.Errorf("empty merge: %+v", got)
	}
}

func TestKeepWanted(t *testing.T) {
	for _, tc := range []struct {
		c    counts
		want bool
	}{
		{counts{Shards: 3, Pending: 3}, true},
		{counts{Shards: 3, Done: 2, Claimed: 1}, true},
		{counts{Shards: 3, Done: 3}, false},
		{counts{Shards: 3, Done: 2, Failed: 1}, false},
		{counts{Shards: 3, Failed: 1, Claimed: 1, Pending: 1}, false}, // stopping
		{counts{Shards: 3, Claimed: 1, Cancel: true}, false},
		{counts{Shards: 3, Pending: 1, Barrier: true}, false},
	} {
		if got := keepWanted(tc.c); got != tc.want {
			t.Errorf("keepWanted(%+v) = %v", tc.c, got)
		}
	}
}

// tikvJob is one in-process node importing a small dump into MariaDB with
// a fake TiDB cluster's PD at pd.
type tikvJob struct {
	t   *testing.T
	cli *clientv3.Client
	job meta.Job
	cfg Config
	log *logBuffer
}

func newTiKVJob(t *testing.T, name string, c *tikvfake.Cluster) *tikvJob {
	srv, cli := etcdserver.StartT(t)
	gen := gendump.Options{Dir: filepath.Join(t.TempDir(), "dump"), DB: "node_" + strings.ReplaceAll(name, "-", "_"),
		Rows: 2_000, Seed: 3, Format: "csv", Header: true, Tables: []string{"customers"}}
	if _, err := gendump.Generate(gen); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, srv.ClientURL, gen.Dir, name)
	cfg.NodeID = "n0"
	cfg.Spec.TiDB = meta.TiDBSpec{PDAddrs: []string{c.PD.URL}, ImportMode: true, PauseSchedulers: true, PauseTTL: 60}
	j := &tikvJob{t: t, cli: cli, cfg: cfg, log: &logBuffer{}}
	j.cfg.Log = slog.New(slog.NewTextHandler(j.log, nil))
	j.job, _ = meta.NewJob("/storm", name)
	return j
}

func (j *tikvJob) run() (int, *meta.Barrier) {
	j.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, err := Run(ctx, j.cfg)
	if err != nil {
		j.t.Fatalf("Run: %v\n%s", err, j.log.b.String())
	}
	b, _, err := meta.ReadBarrier(ctx, j.cli, j.job)
	if err != nil || b == nil {
		j.t.Fatalf("barrier %v, %v", b, err)
	}
	return code, b
}

func (j *tikvJob) get(key string, v any) bool {
	j.t.Helper()
	resp, err := j.cli.Get(context.Background(), key)
	if err != nil {
		j.t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return false
	}
	if err := meta.Decode(key, resp.Kvs[0].Value, v); err != nil {
		j.t.Fatal(err)
	}
	return true
}

// shortRetries makes the prepare and restore retries end in about a second.
func shortRetries(t *testing.T) {
	p, r, b := tikvPrepareRetry, tikvRestoreRetry, tikvBackoff
	tikvPrepareRetry, tikvRestoreRetry, tikvBackoff = time.Second, time.Second, 100*time.Millisecond
	t.Cleanup(func() { tikvPrepareRetry, tikvRestoreRetry, tikvBackoff = p, r, b })
}

var balance = []string{"balance-hot-region-scheduler", "balance-leader-scheduler", "balance-region-scheduler"}

func balanceCluster(t *testing.T, stores ...tikvfake.StoreSpec) *tikvfake.Cluster {
	return tikvfake.StartCluster(t, tikvfake.ClusterConfig{Stores: stores, Schedulers: balance, SharedPort: true})
}

// Every change prepare makes is named in tikv/saved before it is made, so a
// prepare leader that dies halfway through leaves nothing finalize can't put
// back: each store switch and PD write checks etcd as it arrives.
func TestTiKVPrepareSavesBeforeChanging(t *testing.T) {
	c := balanceCluster(t, tikvfake.StoreSpec{ID: 1}, tikvfake.StoreSpec{ID: 2})
	j := newTiKVJob(t, "tikv-save-first", c)
	var mu sync.Mutex
	var checked []string
	var unsaved []string
	saved := func() tikv.Saved {
		var s tikv.Saved
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := j.cli.Get(ctx, j.job.TiKVSaved())
		if err == nil && len(resp.Kvs) > 0 {
			_ = json.Unmarshal(resp.Kvs[0].Value, &s)
		}
		return s
	}
	for id, st := range c.Stores {
		st.OnSwitch(func(m import_sstpb.SwitchMode) {
			if m != import_sstpb.SwitchMode_Import {
				return
			}
			s := saved()
			mu.Lock()
			defer mu.Unlock()
			checked = append(checked, fmt.Sprintf("store %d", id))
			if !slices.ContainsFunc(s.Stores, func(x tikv.Store) bool { return x.ID == id }) {
				unsaved = append(unsaved, fmt.Sprintf("store %d switched before it was saved (%+v)", id, s))
			}
		})
	}
	c.HTTP.FailWhen(func(r tikvfake.Request) bool {
		if r.Method != http.MethodPost {
			return false
		}
		s := saved()
		mu.Lock()
		defer mu.Unlock()
		checked = append(checked, r.URI)
		switch {
		case strings.Contains(r.URI, "/schedulers/"):
			name := r.URI[strings.LastIndex(r.URI, "/")+1:]
			// A resume (delay 0) comes from finalize, long after.
			if !strings.Contains(r.Body, `"delay":0`) && !slices.Contains(s.Schedulers, name) {
				unsaved = append(unsaved, fmt.Sprintf("%s paused before it was saved (%+v)", name, s))
			}
		case strings.Contains(r.URI, "/config") && strings.Contains(r.Body, `:0`):
			if len(s.Config) == 0 {
				unsaved = append(unsaved, fmt.Sprintf("config %s changed before the old values were saved", r.Body))
			}
		}
		return false
	})
	code, b := j.run()
	if code != ExitOK || b.Status != meta.StatusSucceeded {
		t.Fatalf("exit %d, barrier %+v\n%s", code, b, j.log.b.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(unsaved) > 0 {
		t.Errorf("changed before saved:\n%s", strings.Join(unsaved, "\n"))
	}
	// 2 stores, 3 schedulers, 1 config write at least, or the test checked nothing.
	if len(checked) < 6 {
		t.Errorf("checked only %q", checked)
	}
}

// A prepare leader that died after saving leaves tikv/saved behind and the
// cluster in import state. The next leader's Prepare finds the schedulers
// paused and merge switched off; it must keep what the first one found, so
// that finalize resumes the schedulers and puts the config back as it was
// before the job, not as the dead leader left it.
func TestTiKVPrepareKeepsEarlierSavedState(t *testing.T) {
	c := balanceCluster(t, tikvfake.StoreSpec{ID: 1}, tikvfake.StoreSpec{ID: 2})
	j := newTiKVJob(t, "tikv-reuse", c)
	n := &Node{spec: j.cfg.Spec, cfg: j.cfg}
	first, err := tikv.Prepare(context.Background(), n.tikvConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.cli.Put(context.Background(), j.job.TiKVSaved(), meta.Encode(first)); err != nil {
		t.Fatal(err)
	}
	c.HTTP.ResetRequests()

	code, b := j.run()
	if code != ExitOK || b.Status != meta.StatusSucceeded {
		t.Fatalf("exit %d, barrier %+v\n%s", code, b, j.log.b.String())
	}
	var m meta.PhaseMarker
	var sum TiKVPrepareSummary
	if !j.get(j.job.PhaseMarker(meta.PhasePrepare), &m) || json.Unmarshal(m.Summary, &sum) != nil || !sum.Reused || sum.Attempts != 1 {
		t.Errorf("prepare marker %+v", m)
	}
	var saved tikv.Saved
	j.get(j.job.TiKVSaved(), &saved)
	if !slices.Equal(saved.Schedulers, balance) || fmt.Sprint(saved.Config) != "map[max-merge-region-keys:200000 max-merge-region-size:20]" ||
		!saved.At.Equal(first.At) || len(saved.Stores) != 2 {
		t.Errorf("saved %+v, want the first prepare's %+v", saved, first)
	}
	paused, conf, reqs := c.HTTP.State()
	for _, s := range balance {
		if paused[s] != 0 {
			t.Errorf("%s still paused (%d): requests %q", s, paused[s], reqs)
		}
	}
	if got, want := normalised(conf), normalised(tikvfake.DefaultSchedule()); got != want {
		t.Errorf("config at the end:\n got  %s\n want %s", got, want)
	}
	for id, s := range c.Stores {
		if m := s.Modes(); m[len(m)-1] != import_sstpb.SwitchMode_Normal {
			t.Errorf("store %d modes %v", id, m)
		}
	}
	if want := "schedule config max-merge-region-keys=200000,max-merge-region-size=20"; !strings.HasSuffix(b.TiKV, want) {
		t.Errorf("tikv note %q", b.TiKV)
	}
}

func normalised(m map[string]any) string {
	b, _ := json.Marshal(m)
	return string(b)
}

// A store PD lists but that does not answer fails Prepare half-way: the
// job fails without importing a row, finalize switches back the stores that
// were switched, and, with the dead store still dead, says in the barrier
// that the restore failed and what is left to do, within the retry bound.
func TestTiKVPrepareFailureFailsJobAndRestores(t *testing.T) {
	shortRetries(t)
	c := balanceCluster(t, tikvfake.StoreSpec{ID: 1}, tikvfake.StoreSpec{ID: 2, Down: true}, tikvfake.StoreSpec{ID: 3})
	j := newTiKVJob(t, "tikv-prepare-fails", c)
	start := time.Now()
	code, b := j.run()
	if code != ExitJobFailed || b.Status != meta.StatusFailed {
		t.Fatalf("exit %d, barrier %+v\n%s", code, b, j.log.b.String())
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %s", d)
	}
	if !strings.Contains(b.Reason, "prepare: TiKV import state could not be set") || !strings.Contains(b.Reason, "store 2") {
		t.Errorf("reason %q", b.Reason)
	}
	if b.Rows != 0 {
		t.Errorf("%d rows imported after prepare failed", b.Rows)
	}
	var m meta.PhaseMarker
	if !j.get(j.job.PhaseMarker(meta.PhasePrepare), &m) || !strings.Contains(m.Error, "store 2") {
		t.Errorf("prepare marker %+v", m)
	}
	var saved tikv.Saved
	// Saved before Apply: the plan, schedulers included, though Apply
	// stopped at the dead store before it paused them. Restoring a running
	// scheduler and an unchanged config is harmless.
	if !j.get(j.job.TiKVSaved(), &saved) || len(saved.Stores) != 3 || len(saved.Schedulers) != 3 {
		t.Errorf("saved %+v", saved)
	}
	for _, id := range []uint64{1, 3} {
		modes := c.Stores[id].Modes()
		i := slices.Index(modes, import_sstpb.SwitchMode_Normal)
		if i < 1 || slices.Contains(modes[i:], import_sstpb.SwitchMode_Import) {
			t.Errorf("store %d modes %v: want import (prepare's attempts), then normal (restore's)", id, modes)
		}
	}
	if !strings.HasPrefix(b.TiKV, "restore failed after ") || !strings.Contains(b.TiKV, "store 2") ||
		!strings.Contains(b.TiKV, "; to check and do by hand: ") || !strings.Contains(b.TiKV, "switch TiKV ") || !strings.Contains(b.TiKV, saved.Stores[1].Address+",") {
		t.Errorf("tikv note %q", b.TiKV)
	}
	// Prepare stopped before it paused anything or switched merging off:
	// every POST is a restore's (delay 0, the old config values).
	paused, conf, reqs := c.HTTP.State()
	for name, d := range paused {
		if d != 0 {
			t.Errorf("%s paused (%d): requests %q", name, d, reqs)
		}
	}
	if slices.ContainsFunc(reqs, func(r string) bool {
		return strings.HasPrefix(r, "POST") && !strings.Contains(r, `{"delay":0}`) && !strings.Contains(r, `"max-merge-region-keys":200000`)
	}) {
		t.Errorf("PD changed by prepare: requests %q", reqs)
	}
	if got, want := normalised(conf), normalised(tikvfake.DefaultSchedule()); got != want {
		t.Errorf("config at the end:\n got  %s\n want %s", got, want)
	}
}

// A PD that refuses the restore makes finalize give up after the retry
// bound: the barrier is written, with the job's own status (the data is
// verified), and its tikv note says what failed and what to do by hand.
func TestTiKVRestoreFailureIsBoundedAndNoted(t *testing.T) {
	shortRetries(t)
	c := balanceCluster(t, tikvfake.StoreSpec{ID: 1})
	c.HTTP.FailWhen(func(r tikvfake.Request) bool { return r.Body == `{"delay":0}` })
	j := newTiKVJob(t, "tikv-restore-fails", c)
	code, b := j.run()
	if code != ExitOK || b.Status != meta.StatusSucceeded || b.Rows != 2_000 {
		t.Fatalf("exit %d, barrier %+v\n%s", code, b, j.log.b.String())
	}
	for _, want := range []string{"restore failed after ", "resume scheduler balance-leader-scheduler", "HTTP 500",
		"to check and do by hand: pd-ctl scheduler resume balance-hot-region-scheduler; pd-ctl scheduler resume balance-leader-scheduler; pd-ctl scheduler resume balance-region-scheduler; pd-ctl config set max-merge-region-keys 200000; pd-ctl config set max-merge-region-size 20"} {
		if !strings.Contains(b.TiKV, want) {
			t.Errorf("tikv note %q lacks %q", b.TiKV, want)
		}
	}
	if !strings.Contains(j.log.b.String(), "the TiDB cluster needs a DBA") {
		t.Errorf("no error logged:\n%s", j.log.b.String())
	}
	// What could be restored was: the store, the config.
	if m := c.Stores[1].Modes(); m[len(m)-1] != import_sstpb.SwitchMode_Normal {
		t.Errorf("store modes %v", m)
	}
	if _, conf, _ := c.HTTP.State(); normalised(conf) != normalised(tikvfake.DefaultSchedule()) {
		t.Errorf("config %v", conf)
	}
}
