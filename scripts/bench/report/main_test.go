package main

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"storm/meta"
)

func TestAnalyse(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	bar := func(tables string) json.RawMessage {
		return json.RawMessage(`{"status":"succeeded","started":"` + at(0.5).Format(time.RFC3339Nano) + `","finished":"` +
			at(10).Format(time.RFC3339Nano) + `","tables":` + tables + `}`)
	}
	phases := map[string]meta.PhaseMarker{
		"plan": {At: at(0.7)}, "plan-source/main": {At: at(1)}, "prepare": {At: at(1.2)},
		"verify-plan": {At: at(8.5)}, "verify": {At: at(9.6)}, "finalize": {At: at(9.9)},
	}
	done := []meta.Done{{Seconds: 3, At: at(4)}, {Seconds: 6.8, At: at(8)}, {Seconds: 6, At: at(7.9)}}
	run := result{Start: t0, WallSec: 10.3}
	cases := []struct {
		name   string
		tables string
		want   breakdown
	}{
		{"today's barrier", `[{"db":"d","table":"t","ok":true}]`, breakdown{Start: 0.5, Plan: 0.7, Import: 6.8, AfterImport: 2, Exit: 0.3,
			Verify: 1.6, Finalize: 0.3, Busy: 15.8 / (4 * 6.8), IdleWorkerSec: 6.8 - 15.8/4, Steps: map[string]float64{}}},
		{"steps as a list", `[{"table":"a","steps":[{"step":"index","seconds":1.5},{"name":"analyze","seconds":0.25}]},` +
			`{"table":"b","steps":[{"step":"index","seconds":0.5}]}]`,
			breakdown{Steps: map[string]float64{"index": 2, "analyze": 0.25}}},
		{"steps as an object", `[{"table":"a","steps":{"verify":{"seconds":2},"analyze":0.5}}]`,
			breakdown{Steps: map[string]float64{"verify": 2, "analyze": 0.5}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := analyse(run, captured{Workers: 4, Barrier: bar(c.tables), Phases: phases, Done: done})
			if err != nil {
				t.Fatal(err)
			}
			if c.want.Import > 0 {
				for _, f := range []struct {
					name      string
					got, want float64
				}{{"start", b.Start, c.want.Start}, {"plan", b.Plan, c.want.Plan}, {"import", b.Import, c.want.Import},
					{"after", b.AfterImport, c.want.AfterImport}, {"exit", b.Exit, c.want.Exit}, {"verify", b.Verify, c.want.Verify},
					{"finalize", b.Finalize, c.want.Finalize}, {"busy", b.Busy, c.want.Busy}, {"idle", b.IdleWorkerSec, c.want.IdleWorkerSec}} {
					if math.Abs(f.got-f.want) > 1e-6 {
						t.Errorf("%s %.4f, want %.4f", f.name, f.got, f.want)
					}
				}
				if sum := b.Start + b.Plan + b.Import + b.AfterImport + b.Exit; math.Abs(sum-run.WallSec) > 1e-6 {
					t.Errorf("segments add up to %.3f, not the wall time %.3f", sum, run.WallSec)
				}
			}
			if len(b.Steps) != len(c.want.Steps) {
				t.Fatalf("steps %v, want %v", b.Steps, c.want.Steps)
			}
			for k, v := range c.want.Steps {
				if b.Steps[k] != v {
					t.Errorf("step %s %.2f, want %.2f", k, b.Steps[k], v)
				}
			}
		})
	}
	if _, err := analyse(run, captured{}); err == nil {
		t.Fatal("no barrier: no error")
	}
}
