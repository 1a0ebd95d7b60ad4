package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	"storm/jobctl"
	"storm/meta"
)

func running(done int, nodes ...string) *jobctl.Status {
	st := &jobctl.Status{Job: "j", State: jobctl.StateRunning, Phase: "import", Shards: 10, Done: done, Claimed: 2,
		Bytes: int64(done) * 100, Total: 1000, Percent: float64(done) * 10, ReadAt: time.Now(),
		Throughput: jobctl.Throughput{Now: jobctl.Rate{RowsPerSec: 2000, BytesPerSec: 150}}}
	eta := 42.0
	st.ETA = &eta
	for _, id := range nodes {
		st.Nodes = append(st.Nodes, jobctl.NodeState{NodeRecord: meta.NodeRecord{NodeInfo: meta.NodeInfo{ID: id}, Phase: "import"},
			ShardsDone: done / 2, InWork: 1, Rate: jobctl.Rate{RowsPerSec: 1000}})
	}
	return st
}

func finished(status meta.Status) *jobctl.Status {
	st := running(10)
	st.Phase, st.State, st.ETA = "finished ("+string(status)+")", string(status), nil
	st.Barrier = &meta.Barrier{Job: "j", Status: status, Rows: 1234, Shards: 10}
	return st
}

// --watch on a terminal: a bar for the job, one per live node; a node that
// left loses its bar; the end prints the full status.
func TestWatchBars(t *testing.T) {
	for _, status := range []meta.Status{meta.StatusSucceeded, meta.StatusFailed} {
		t.Run(string(status), func(t *testing.T) {
			var buf bytes.Buffer
			r := newBarRenderer(&buf, mpb.WithAutoRefresh(), mpb.WithWidth(160))
			r.update(running(4, "n1", "n2"))
			r.update(running(6, "n1"))
			if _, ok := r.nodes["n2"]; ok || len(r.nodes) != 1 {
				t.Errorf("node bars %v, want n1 only", r.nodes)
			}
			r.finish(finished(status))
			out := buf.String()
			for _, want := range []string{"job j import", "node n1", "6/10 shards", "eta 42s", "finished (" + string(status) + ")",
				"barrier: " + string(status)} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// --watch elsewhere: a line whenever the job moved, the full status at the
// end.
func TestWatchLines(t *testing.T) {
	var buf bytes.Buffer
	r := &lineRenderer{w: &buf}
	r.update(running(4, "n1"))
	r.update(running(4, "n1")) // nothing moved
	r.update(running(5, "n1"))
	r.update(finished(meta.StatusSucceeded))
	r.finish(finished(meta.StatusSucceeded))
	out := buf.String()
	if n := strings.Count(out, "job j import:"); n != 2 {
		t.Errorf("%d progress lines, want 2:\n%s", n, out)
	}
	for _, want := range []string{"4/10 shards done, 2 in work", "eta 42s", "1 node(s)", "job j: finished (succeeded)", "0 pending"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// --watch on an 80-column terminal: the job's bar and the node bars are
// drawn with a width (the job's details once took its whole line and left
// it "[]").
func TestWatchJobBarHasWidth(t *testing.T) {
	var buf bytes.Buffer
	// Off a terminal mpb draws lines of the requested width: 80 columns, as
	// a small terminal would. Redraws happen when the test says.
	redraw := make(chan any)
	r := newBarRenderer(&buf, mpb.WithManualRefresh(redraw), mpb.WithWidth(80))
	r.update(running(4, "n1"))
	redraw <- nil
	redraw <- nil // taken once the first redraw was handed over
	r.finish(finished(meta.StatusFailed))
	bar := regexp.MustCompile(`\[([^\]]*)\]`)
	seen := map[string]bool{}
	for _, line := range strings.Split(buf.String(), "\n") {
		for _, who := range []string{"job j import", "node n1"} {
			if !strings.Contains(line, who) {
				continue
			}
			m := bar.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			seen[who] = true
			if w := len([]rune(m[1])); w < 10 {
				t.Errorf("%s: bar %d columns wide, want at least 10: %q", who, w, line)
			}
		}
	}
	for _, who := range []string{"job j import", "node n1"} {
		if !seen[who] {
			t.Errorf("no bar drawn for %s:\n%s", who, buf.String())
		}
	}
}
