package node

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	"storm/meta"
)

// The terminal bar draws the job's shards and this node's rows, and ends
// complete when every shard is done.
func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	p := mpb.New(mpb.WithOutput(&buf), mpb.WithAutoRefresh(), mpb.WithWidth(120))
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	snap := func() counts {
		calls++
		if calls >= 3 {
			cancel()
			return counts{Shards: 4, Done: 4}
		}
		return counts{Shards: 4, Done: 1, Claimed: 2, Pending: 1}
	}
	runBar(ctx, p, "job n1", snap, func() int64 { return 1234 }, time.Millisecond)
	out := buf.String()
	for _, want := range []string{"job n1", "4/4 shards", "100 %", "this node: 1234 rows"} {
		if !strings.Contains(out, want) {
			t.Errorf("bar lacks %q:\n%s", want, out)
		}
	}
}

// Every log line says the node's phase, unless it names one itself.
func TestPhaseLog(t *testing.T) {
	var buf bytes.Buffer
	n := &Node{}
	log := n.withPhase(slog.New(slog.NewTextHandler(&buf, nil))).With("node", "n1")
	log.Info("before")
	n.setPhase(meta.PhaseVerifyPlan)
	log.Info("during")
	log.Info("explicit", "phase", "plan")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || strings.Contains(lines[0], "phase=") || !strings.HasSuffix(lines[1], "node=n1 phase=verify") ||
		strings.Count(lines[2], "phase=") != 1 {
		t.Fatalf("log:\n%s", buf.String())
	}
}
