package node

// What a person at a terminal sees of a node: log lines, with a progress
// bar (mpb) below them during the import. Elsewhere (systemd, CI, a file)
// stderr gets log lines only, a progress line at an interval among them.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"storm/jobctl"
	"storm/meta"
)

// Console is a node's stderr. Log lines go through it: above the progress
// bar while one shows, straight to the file otherwise.
type Console struct {
	out io.Writer
	tty bool

	mu   sync.Mutex
	bars *mpb.Progress
}

// NewConsole wraps f; a terminal (term.IsTerminal) gets progress bars.
func NewConsole(f *os.File) *Console {
	return &Console{out: f, tty: term.IsTerminal(int(f.Fd()))}
}

// Terminal tells whether the console shows progress bars.
func (c *Console) Terminal() bool { return c != nil && c.tty }

// Write writes log output above the bars, or to the file.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	bars := c.bars
	c.mu.Unlock()
	if bars != nil {
		if n, err := bars.Write(p); err == nil {
			return n, nil
		}
	}
	return c.out.Write(p)
}

func (c *Console) attach(p *mpb.Progress) {
	c.mu.Lock()
	c.bars = p
	c.mu.Unlock()
}

// progressBar shows the import's progress in a terminal until ctx ends:
// shards done of the job's, and this node's rows and rows/s.
func (n *Node) progressBar(ctx context.Context, v *view[meta.Shard]) {
	con := n.cfg.Console
	p := mpb.New(mpb.WithOutput(con.out), mpb.WithWidth(48), mpb.WithRefreshRate(250*time.Millisecond))
	con.attach(p)
	defer con.attach(nil)
	title := fmt.Sprintf("%s %s", n.job.ID, n.cfg.NodeID)
	runBar(ctx, p, title, v.snapshot, n.metrics.rows.Load, 250*time.Millisecond)
}

// runBar drives one bar on p until ctx ends, then waits for p's last
// render. snap says where the shards stand, rows what this node wrote.
func runBar(ctx context.Context, p *mpb.Progress, title string, snap func() counts, rows func() int64, every time.Duration) {
	var extra atomic.Pointer[string]
	empty := ""
	extra.Store(&empty)
	// Total 0: the bar completes when the import does, not when mpb sees
	// current reach the total it was created with.
	bar := p.AddBar(0,
		mpb.PrependDecorators(decor.Name(title+" ", decor.WCSyncSpaceR), decor.CountersNoUnit("%d/%d shards", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.Any(func(decor.Statistics) string { return *extra.Load() })),
	)
	t := time.NewTicker(every)
	defer t.Stop()
	lastRows, lastAt, rate := rows(), time.Now(), 0.0
	var c counts
	for running := true; running; {
		select {
		case <-t.C:
		case <-ctx.Done():
			running = false // one last look
		}
		c = snap()
		bar.SetTotal(int64(max(c.Shards, 1)), false)
		bar.SetCurrent(int64(c.Done + c.Failed))
		r, now := rows(), time.Now()
		if dt := now.Sub(lastAt).Seconds(); dt > 0 {
			// A moving average over about ten refreshes.
			rate = 0.9*rate + 0.1*float64(r-lastRows)/dt
		}
		lastRows, lastAt = r, now
		s := fmt.Sprintf("  %d in work, %d failed | this node: %d rows, %s rows/s", c.Claimed, c.Failed, r, jobctl.HumanCount(rate))
		extra.Store(&s)
	}
	if c.Shards > 0 && c.Done == c.Shards {
		bar.SetTotal(-1, true)
	} else {
		bar.Abort(false)
	}
	p.Wait()
}

// phaseHandler adds the node's phase to every log line that does not name
// one itself.
type phaseHandler struct {
	slog.Handler
	n *Node
}

// withPhase makes every line of l say the node's phase.
func (n *Node) withPhase(l *slog.Logger) *slog.Logger {
	return slog.New(phaseHandler{Handler: l.Handler(), n: n})
}

func (h phaseHandler) Handle(ctx context.Context, r slog.Record) error {
	if p := h.n.currentPhase(); p != "" {
		named := false
		r.Attrs(func(a slog.Attr) bool {
			named = a.Key == "phase"
			return !named
		})
		if !named {
			r = r.Clone()
			r.AddAttrs(slog.String("phase", p))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h phaseHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return phaseHandler{Handler: h.Handler.WithAttrs(as), n: h.n}
}

func (h phaseHandler) WithGroup(name string) slog.Handler {
	return phaseHandler{Handler: h.Handler.WithGroup(name), n: h.n}
}
