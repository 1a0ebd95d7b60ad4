package jobctl

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"storm/meta"
)

// statusOf builds a job's records as etcd would hold them and sums them up
// at now.
func statusOf(t *testing.T, now time.Time, recs map[string]any) *Status {
	t.Helper()
	job, _ := meta.NewJob("/storm", "j")
	tr := newTracker(job)
	for k, v := range recs {
		tr.apply(job.Root()+k, []byte(meta.Encode(v)))
	}
	st, err := tr.status(now)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestStatusSums(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ago := func(s float64) time.Time { return now.Add(-time.Duration(s * float64(time.Second))) }
	base := func() map[string]any {
		return map[string]any{
			"spec":          meta.SpecRecord{CreatedAt: ago(100)},
			"phase/plan":    meta.PhaseMarker{Phase: meta.PhasePlan, By: "n1"},
			"shards/a":      meta.Shard{ID: "a", Bytes: 100},
			"shards/b":      meta.Shard{ID: "b", Bytes: 200},
			"shards/c":      meta.Shard{ID: "c", Bytes: 300},
			"shards/d":      meta.Shard{ID: "d", Bytes: 400},
			"done/a":        meta.Done{Rows: 10, Bytes: 100, Node: "n1", Seconds: 10, At: ago(10)},
			"claims/b":      meta.Claim{Node: "n2", At: ago(20)},
			"progress/b":    meta.Progress{Node: "n2", Rows: 5, Bytes: 50, At: ago(10)},
			"failed/c":      meta.Failed{Shard: "c", File: "c.csv", Line: 4, Reason: "bad"},
			"nodes/n1":      meta.NodeRecord{NodeInfo: meta.NodeInfo{ID: "n1", Started: ago(50)}},
			"nodes/n2":      meta.NodeRecord{NodeInfo: meta.NodeInfo{ID: "n2", Started: ago(50)}, Heartbeat: ago(3), Phase: "import"},
			"progress/gone": meta.Progress{Node: "n1", Rows: 1, Bytes: 1, At: ago(40)}, // a released shard's leftover
		}
	}
	tests := []struct {
		name  string
		edit  func(map[string]any)
		check func(t *testing.T, st *Status)
	}{
		{"running", nil, func(t *testing.T, st *Status) {
			if st.State != StateRunning || st.Phase != "import" || st.Shards != 4 || st.Done != 1 || st.Claimed != 1 ||
				st.Failed != 1 || st.Pending != 1 || st.Total != 1000 || st.Owners["n2"] != 1 {
				t.Errorf("counts %+v", st)
			}
			// The leftover progress record of a released shard counts too:
			// its rows are committed.
			if st.Rows != 16 || st.Bytes != 151 {
				t.Errorf("rows %d bytes %d, want 16, 151", st.Rows, st.Bytes)
			}
			// 100 bytes within the window from done/a, 50 from b's progress.
			if got := st.Throughput.Now.BytesPerSec; !near(got, 150.0/30) {
				t.Errorf("now %v B/s, want 5", got)
			}
			if got := st.Throughput.Average.BytesPerSec; !near(got, 151.0/100) {
				t.Errorf("average %v B/s", got)
			}
			if st.ETA == nil || !near(*st.ETA, 849/5.0) {
				t.Errorf("eta %v, want 169.8", st.ETA)
			}
			if len(st.Nodes) != 2 || st.Nodes[0].ShardsDone != 1 || !near(st.Nodes[0].Rate.BytesPerSec, 100.0/30) ||
				st.Nodes[1].InWork != 1 || !near(st.Nodes[1].Rate.BytesPerSec, 50.0/30) {
				t.Errorf("nodes %+v", st.Nodes)
			}
			if !near(st.Nodes[0].HeartbeatAge, 50) || !near(st.Nodes[1].HeartbeatAge, 3) {
				t.Errorf("heartbeat ages %v %v", st.Nodes[0].HeartbeatAge, st.Nodes[1].HeartbeatAge)
			}
			if len(st.FailedShards) != 1 || st.FailedShards[0].Line != 4 {
				t.Errorf("failed shards %+v", st.FailedShards)
			}
		}},
		{"young job: the window begins with it", func(m map[string]any) {
			m["spec"] = meta.SpecRecord{CreatedAt: ago(10)}
			// Half of its span lies within the window.
			m["done/a"] = meta.Done{Rows: 10, Bytes: 100, Node: "n1", Seconds: 10, At: ago(5)}
		}, func(t *testing.T, st *Status) {
			if st.Throughput.WindowSeconds != 10 || !near(st.Throughput.Now.BytesPerSec, 50.0/10) {
				t.Errorf("window %v, now %v", st.Throughput.WindowSeconds, st.Throughput.Now)
			}
		}},
		{"a failure that is no shard", func(m map[string]any) {
			m["failed/tikv-prepare"] = meta.Failed{Shard: "tikv-prepare", Reason: "pd down"}
		}, func(t *testing.T, st *Status) {
			if st.Failed != 2 || st.Pending != 1 {
				t.Errorf("failed %d pending %d, want 2, 1", st.Failed, st.Pending)
			}
		}},
		{"import done: eta 0", func(m map[string]any) {
			delete(m, "shards/b")
			delete(m, "shards/d")
			delete(m, "failed/c")
			delete(m, "shards/c")
		}, func(t *testing.T, st *Status) {
			if st.ETA == nil || *st.ETA != 0 {
				t.Errorf("eta %v, want 0", st.ETA)
			}
		}},
		{"finished", func(m map[string]any) {
			m["barrier"] = meta.Barrier{Status: meta.StatusFailed, Seconds: 20}
			delete(m, "nodes/n1")
			delete(m, "nodes/n2")
		}, func(t *testing.T, st *Status) {
			if st.State != "failed" || st.Phase != "finished (failed)" || st.ExitCode == nil || *st.ExitCode != 1 ||
				st.ETA != nil || st.Throughput.Now != (Rate{}) || st.Elapsed != 20 {
				t.Errorf("finished %+v", st)
			}
		}},
		{"a source waits for its host", func(m map[string]any) {
			m["spec"] = meta.SpecRecord{CreatedAt: ago(100), Spec: meta.Spec{Source: meta.SourceSpec{Dirs: []meta.SourceDir{
				{ID: "s1", Dir: "/d1"}, {ID: "s2", Dir: "/d2", Node: "h2"}}}}}
			m["phase/"+string(meta.PlanSource("s1"))] = meta.PhaseMarker{By: "n1"}
		}, func(t *testing.T, st *Status) {
			want := []SourceState{{ID: "s1", Planned: true, NodeAlive: true}, {ID: "s2", Node: "h2"}}
			if len(st.Sources) != 2 || !reflect.DeepEqual(st.Sources, want) || st.ETA != nil {
				t.Errorf("sources %+v, eta %v", st.Sources, st.ETA)
			}
			var buf bytes.Buffer
			st.Print(&buf)
			if !strings.Contains(buf.String(), "source s2 waits for node h2, not running") {
				t.Errorf("print:\n%s", buf.String())
			}
		}},
		{"idle: no node", func(m map[string]any) {
			delete(m, "nodes/n1")
			delete(m, "nodes/n2")
		}, func(t *testing.T, st *Status) {
			if st.State != StateIdle {
				t.Errorf("state %s", st.State)
			}
		}},
		{"not started", func(m map[string]any) {
			for k := range m {
				delete(m, k)
			}
		}, func(t *testing.T, st *Status) {
			if st.State != StateNotStarted || st.Phase != "not started" || st.ETA != nil || st.Nodes != nil {
				t.Errorf("%+v", st)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			if tc.edit != nil {
				tc.edit(m)
			}
			tc.check(t, statusOf(t, now, m))
		})
	}
}

// A tracker follows deletes as a watch delivers them.
func TestStatusTrackerDeletes(t *testing.T) {
	job, _ := meta.NewJob("/storm", "j")
	tr := newTracker(job)
	tr.apply(job.Shard("a"), []byte(meta.Encode(meta.Shard{Bytes: 10})))
	tr.apply(job.Claim("a"), []byte(meta.Encode(meta.Claim{Node: "n1"})))
	tr.apply(job.Barrier(), []byte(meta.Encode(meta.Barrier{Status: meta.StatusCancelled})))
	tr.apply(job.Claim("a"), nil)
	tr.apply(job.Barrier(), nil)
	tr.apply("/storm/jobs/other/claims/a", []byte(meta.Encode(meta.Claim{Node: "x"})))
	st, err := tr.status(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.Claimed != 0 || st.Pending != 1 || st.Barrier != nil {
		t.Fatalf("%+v", st)
	}
}

func TestOverlap(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	for _, tc := range []struct {
		a, b, from, to int
		want           float64
	}{
		{0, 10, 0, 10, 1},
		{0, 10, 5, 20, 0.5},
		{0, 10, 20, 30, 0},
		{10, 0, 5, 20, 0.5}, // reversed span
		{5, 5, 0, 10, 1},    // a point within
		{15, 15, 0, 10, 0},  // a point outside
	} {
		if got := overlap(at(tc.a), at(tc.b), at(tc.from), at(tc.to)); !near(got, tc.want) {
			t.Errorf("overlap(%d..%d in %d..%d) = %v, want %v", tc.a, tc.b, tc.from, tc.to, got, tc.want)
		}
	}
}

func TestHumanFormats(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{HumanBytes(999), "999 B"},
		{HumanBytes(1500), "1.5 kB"},
		{HumanBytes(2_600_000), "2.6 MB"},
		{HumanCount(950), "950"},
		{HumanCount(12_345), "12.3k"},
		{HumanSeconds(0.25), "300ms"},
		{HumanSeconds(75.4), "1m15s"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }

// TestStatusSkipped: the files a source's plan skipped are listed per
// source, and the barrier's tables without a data file are named.
func TestStatusSkipped(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sum := meta.PlanSummary{Source: meta.MainSource, Skipped: []string{"metadata", "shop.v-schema-view.sql"}}
	st := statusOf(t, now, map[string]any{
		"spec":                   meta.SpecRecord{Spec: meta.Spec{Source: meta.SourceSpec{Dir: "/dump"}}, CreatedAt: now.Add(-time.Minute)},
		"phase/plan-source/main": meta.PhaseMarker{Phase: meta.PlanSource(meta.MainSource), By: "n1", Summary: []byte(meta.Encode(sum))},
		"barrier":                meta.Barrier{Status: meta.StatusSucceeded, NoData: []string{"shop.empty"}, Skipped: []string{"/dump/metadata"}},
	})
	if len(st.Sources) != 1 || strings.Join(st.Sources[0].Skipped, " ") != "metadata shop.v-schema-view.sql" {
		t.Fatalf("sources %+v", st.Sources)
	}
	var out bytes.Buffer
	st.Print(&out)
	for _, want := range []string{"source main: 2 file(s) skipped: metadata, shop.v-schema-view.sql", "tables with no data file (created, left empty): shop.empty"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("%q not in:\n%s", want, out.String())
		}
	}
}

// Each table's state follows its shards, its steps' claim and progress,
// their records, and the verify phase.
func TestStatusTableStates(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	shard := func(table string) meta.Shard { return meta.Shard{DB: "d", Table: table, Bytes: 10} }
	step := func(table string) meta.TableStep { return meta.TableStep{DB: "d", Table: table} }
	recs := map[string]any{
		"spec":                  meta.SpecRecord{CreatedAt: now.Add(-time.Minute)},
		"shards/s.d.imp.0":      shard("imp"),
		"shards/s.d.imp.1":      shard("imp"),
		"done/s.d.imp.0":        meta.Done{DB: "d", Table: "imp"},
		"shards/s.d.wait.0":     shard("wait"),
		"done/s.d.wait.0":       meta.Done{DB: "d", Table: "wait"},
		"shards/s.d.idx.0":      shard("idx"),
		"done/s.d.idx.0":        meta.Done{DB: "d", Table: "idx"},
		"step-claims/d.idx":     meta.Claim{Node: "n2"},
		"step-progress/d.idx":   meta.StepProgress{Node: "n2", Step: meta.StepIndexes},
		"shards/s.d.ana.0":      shard("ana"),
		"done/s.d.ana.0":        meta.Done{DB: "d", Table: "ana"},
		"step-claims/d.ana":     meta.Claim{Node: "n1"},
		"step-progress/d.ana":   meta.StepProgress{Node: "n1", Step: meta.StepAnalyze},
		"shards/s.d.ver.0":      shard("ver"),
		"done/s.d.ver.0":        meta.Done{DB: "d", Table: "ver"},
		"steps-done/d.ver":      meta.StepsDone{DB: "d", Table: "ver", Steps: []meta.StepResult{{Step: meta.StepIndexes, Seconds: 1.5}}},
		"shards/s.d.bad.0":      shard("bad"),
		"done/s.d.bad.0":        meta.Done{DB: "d", Table: "bad"},
		"steps-failed/d.bad":    meta.Failed{Shard: "d.bad", Reason: "index `k` is missing"},
		"shards/s.d.shard.0":    shard("shard"),
		"failed/s.d.shard.0":    meta.Failed{Reason: "bad row"},
		"table-steps/d.empty":   step("empty"),
		"table-steps/d.imp":     step("imp"),
		"table-steps/d.wait":    step("wait"),
		"table-steps/d.idx":     step("idx"),
		"table-steps/d.ana":     step("ana"),
		"table-steps/d.ver":     step("ver"),
		"table-steps/d.bad":     step("bad"),
		"table-steps/d.shard":   step("shard"),
		"step-claims/d.missing": meta.Claim{Node: "n1"}, // a claim of no table the job has: not listed
	}
	want := map[string]string{"imp": TableImporting, "wait": TableWaiting, "idx": TableIndexing, "ana": TableAnalyzing,
		"ver": TableVerifying, "bad": TableFailed, "shard": TableFailed, "empty": TableWaiting}
	check := func(st *Status, want map[string]string) {
		t.Helper()
		if len(st.Tables) != len(want) {
			t.Errorf("tables %+v", st.Tables)
		}
		for _, ts := range st.Tables {
			if ts.State != want[ts.Table] {
				t.Errorf("table %s: %s, want %s (%+v)", ts.Table, ts.State, want[ts.Table], ts)
			}
		}
	}
	st := statusOf(t, now, recs)
	check(st, want)
	for _, ts := range st.Tables {
		switch ts.Table {
		case "idx":
			if ts.Node != "n2" {
				t.Errorf("idx runs on %q", ts.Node)
			}
		case "ver":
			if len(ts.Steps) != 1 || ts.Steps[0].Seconds != 1.5 {
				t.Errorf("ver steps %+v", ts.Steps)
			}
		case "bad":
			if !strings.Contains(ts.Error, "index `k` is missing") {
				t.Errorf("bad error %q", ts.Error)
			}
		}
	}
	var out bytes.Buffer
	st.Print(&out)
	for _, line := range []string{"tables: 0 of 8 done", "table d.imp: importing (1 of 2 shards done)", "table d.idx: indexing on n2",
		"table d.ver: verifying; steps: indexes 1.5s"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("status lacks %q:\n%s", line, out.String())
		}
	}
	// Once the verify phase is done, a table whose steps are done is done.
	recs["phase/verify"] = meta.PhaseMarker{Phase: meta.PhaseVerify}
	want["ver"] = TableDone
	check(statusOf(t, now, recs), want)
}
