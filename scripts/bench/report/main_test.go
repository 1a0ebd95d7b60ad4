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
	// The barrier as storm writes it: meta's own types, encoded by meta.
	bar := func(tables ...meta.TableResult) json.RawMessage {
		return json.RawMessage(meta.Encode(meta.Barrier{Job: "j", Status: meta.StatusSucceeded, Tables: tables,
			Started: at(0.5), Finished: at(10), Seconds: 9.5, Nodes: []string{"n1"}, By: "n1"}))
	}
	phases := map[string]meta.PhaseMarker{
		"plan": {At: at(0.7)}, "plan-source/main": {At: at(1)}, "prepare": {At: at(1.2)},
		"verify-plan": {At: at(8.5)}, "verify": {At: at(9.6)}, "finalize": {At: at(9.9)},
	}
	done := []meta.Done{{Seconds: 3, At: at(4)}, {Seconds: 6.8, At: at(8)}, {Seconds: 6, At: at(7.9)}}
	run := result{Start: t0, WallSec: 10.3}
	wall := breakdown{Start: 0.5, Plan: 0.7, Import: 6.8, AfterImport: 2, Exit: 0.3, Verify: 1.6, Finalize: 0.3,
		ShardSec: 15.8, Busy: 15.8 / (4 * 6.8), IdleWorkerSec: 6.8 - 15.8/4}
	cases := []struct {
		name   string
		tables []meta.TableResult
		steps  map[string]float64
	}{
		{"no steps (verify off, nothing deferred)", []meta.TableResult{{DB: "d", Table: "t", Mode: "off", OK: true}}, map[string]float64{}},
		{"deferred indexes, analyze, verify read-back", []meta.TableResult{
			{DB: "d", Table: "a", Mode: "digest", OK: true, Steps: []meta.StepResult{
				{Step: "indexes", Detail: "2 index(es) in one ALTER TABLE", Seconds: 1.5},
				{Step: "check", Seconds: 0.25},
				{Step: "analyze", Seconds: 0.5},
				{Step: "verify-plan", Detail: "digest in 3 range(s)", Seconds: 0.125},
				{Step: "verify", Detail: "3 range(s) read back; seconds summed over them", Seconds: 2},
			}},
			{DB: "d", Table: "b", Mode: "digest", OK: true, Steps: []meta.StepResult{
				{Step: "analyze", Seconds: 0.25},
				{Step: "verify-plan", Detail: "digest in 1 range(s)", Seconds: 0.125},
				{Step: "verify", Seconds: 1},
			}},
			{DB: "d", Table: "c", Mode: "digest", OK: true}, // no data, or a storm before the steps
		}, map[string]float64{"indexes": 1.5, "check": 0.25, "analyze": 0.75, "verify-plan": 0.25, "verify": 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := analyse(run, captured{Workers: 4, Barrier: bar(c.tables...), Phases: phases, Done: done})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				name      string
				got, want float64
			}{{"start", b.Start, wall.Start}, {"plan", b.Plan, wall.Plan}, {"import", b.Import, wall.Import},
				{"after", b.AfterImport, wall.AfterImport}, {"exit", b.Exit, wall.Exit}, {"verify", b.Verify, wall.Verify},
				{"finalize", b.Finalize, wall.Finalize}, {"shard s", b.ShardSec, wall.ShardSec}, {"busy", b.Busy, wall.Busy},
				{"idle", b.IdleWorkerSec, wall.IdleWorkerSec}} {
				if math.Abs(f.got-f.want) > 1e-6 {
					t.Errorf("%s %.4f, want %.4f", f.name, f.got, f.want)
				}
			}
			if sum := b.Start + b.Plan + b.Import + b.AfterImport + b.Exit; math.Abs(sum-run.WallSec) > 1e-6 {
				t.Errorf("segments add up to %.3f, not the wall time %.3f", sum, run.WallSec)
			}
			if len(b.Steps) != len(c.steps) {
				t.Fatalf("steps %v, want %v", b.Steps, c.steps)
			}
			for k, v := range c.steps {
				if math.Abs(b.Steps[k]-v) > 1e-9 {
					t.Errorf("step %s %.3f, want %.3f", k, b.Steps[k], v)
				}
			}
		})
	}
	if _, err := analyse(run, captured{}); err == nil {
		t.Fatal("no barrier: no error")
	}
}
