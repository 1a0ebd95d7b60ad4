package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/term"

	"storm/jobctl"
	"storm/meta"
	"storm/node"
)

// statusFlags are the flags of `storm status` and `storm job show`.
type statusFlags struct {
	json     *bool
	watch    *bool
	interval *time.Duration
}

func addStatusFlags(fs *pflag.FlagSet) statusFlags {
	return statusFlags{
		json:     fs.Bool("json", false, "print the status as JSON (with --watch: one document per line)"),
		watch:    fs.BoolP("watch", "w", false, "redraw live until the barrier exists, then exit with the job's code"),
		interval: fs.Duration("interval", time.Second, "how often --watch redraws"),
	}
}

func runStatus(ctx context.Context, args []string, stdout io.Writer) error {
	fs := commonFlags("status")
	f := addStatusFlags(fs)
	s, err := parseJobArgs(fs, args, true)
	if err != nil {
		return err
	}
	return showStatus(ctx, s, f, stdout)
}

func showStatus(ctx context.Context, s *settings, f statusFlags, stdout io.Writer) error {
	cli, job, err := connect(ctx, s)
	if err != nil {
		return err
	}
	defer cli.Close()
	if *f.watch {
		return watchStatus(ctx, cli, job, f, stdout)
	}
	st, err := jobctl.ReadStatus(ctx, cli, job)
	if err != nil {
		return &node.ExitError{Code: node.ExitLost, Err: err}
	}
	if *f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	st.Print(stdout)
	return nil
}

// watchStatus follows the job until its barrier exists and exits with the
// job's code: progress bars on a terminal, a line per change elsewhere, a
// JSON document per redraw with --json.
func watchStatus(ctx context.Context, cli *clientv3.Client, job meta.Job, f statusFlags, stdout io.Writer) error {
	var r statusRenderer
	switch {
	case *f.json:
		r = &jsonRenderer{enc: json.NewEncoder(stdout)}
	case isTerminal(stdout):
		r = newBarRenderer(stdout)
	default:
		r = &lineRenderer{w: stdout}
	}
	var last *jobctl.Status
	err := jobctl.WatchStatus(ctx, cli, job, *f.interval, func(st *jobctl.Status) bool {
		last = st
		r.update(st)
		return st.Barrier == nil
	})
	r.finish(last)
	if err != nil {
		return &node.ExitError{Code: node.ExitLost, Err: fmt.Errorf("watching job %s: %w", job.ID, err)}
	}
	if last == nil || last.Barrier == nil {
		return &node.ExitError{Code: node.ExitLost, Err: fmt.Errorf("watching job %s: stopped before the barrier", job.ID)}
	}
	if code := last.Barrier.ExitCode(); code != node.ExitOK {
		return &node.ExitError{Code: code}
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// statusRenderer draws what `storm status --watch` sees.
type statusRenderer interface {
	update(st *jobctl.Status)
	finish(last *jobctl.Status) // last is nil if nothing was read
}

type jsonRenderer struct{ enc *json.Encoder }

func (r *jsonRenderer) update(st *jobctl.Status) { _ = r.enc.Encode(st) }
func (r *jsonRenderer) finish(*jobctl.Status)    {}

// lineRenderer prints a line whenever the job moved: for logs and pipes.
type lineRenderer struct {
	w    io.Writer
	last string
}

func (r *lineRenderer) update(st *jobctl.Status) {
	key := fmt.Sprint(st.Phase, st.Done, st.Claimed, st.Failed, st.Shards, st.Bytes, len(st.Nodes))
	if key == r.last || st.Barrier != nil {
		return
	}
	r.last = key
	fmt.Fprintf(r.w, "%s %s\n", st.ReadAt.Local().Format("15:04:05"), summaryLine(st))
}

func (r *lineRenderer) finish(last *jobctl.Status) {
	if last != nil && last.Barrier != nil {
		last.Print(r.w)
	}
}

// summaryLine is one line about the job.
func summaryLine(st *jobctl.Status) string {
	s := fmt.Sprintf("job %s %s: %d/%d shards done, %d in work, %d failed; %s of %s (%.1f%%); now %s",
		st.Job, st.Phase, st.Done, st.Shards, st.Claimed, st.Failed, jobctl.HumanBytes(st.Bytes), jobctl.HumanBytes(st.Total),
		st.Percent, st.Throughput.Now)
	if st.ETA != nil {
		s += "; eta " + fmtSeconds(*st.ETA)
	}
	return s + fmt.Sprintf("; %d node(s)", len(st.Nodes))
}

func fmtSeconds(s float64) string { return jobctl.HumanSeconds(s) }

// barRenderer draws the job as an mpb bar of bytes done, and a bar per live
// node of the shards it finished, with its rows/s and heartbeat.
type barRenderer struct {
	w          io.Writer
	p          *mpb.Progress
	job        *mpb.Bar
	detail     *mpb.Bar // a line of text under the job's bar
	head, tail atomic.Pointer[string]
	more       atomic.Pointer[string]
	nodes      map[string]*nodeBar
}

type nodeBar struct {
	bar  *mpb.Bar
	text atomic.Pointer[string]
}

func newBarRenderer(w io.Writer, opts ...mpb.ContainerOption) *barRenderer {
	opts = append([]mpb.ContainerOption{mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(200 * time.Millisecond)}, opts...)
	r := &barRenderer{w: w, p: mpb.New(opts...), nodes: map[string]*nodeBar{}}
	empty := ""
	r.head.Store(&empty)
	r.tail.Store(&empty)
	r.more.Store(&empty)
	// Total 0: the bar completes only when finish says so (mpb completes a
	// bar whose current reaches the total it was created with). The bar
	// gets what its decorators leave of the line, so the job's line carries
	// only its bytes; shards, rates and eta go on a line of their own.
	r.job = r.p.AddBar(0,
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return *r.head.Load() }, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.Any(func(decor.Statistics) string { return *r.tail.Load() })),
	)
	r.detail = r.p.New(0, mpb.NopStyle(), mpb.BarFillerTrim(),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return *r.more.Load() })))
	return r
}

func (r *barRenderer) update(st *jobctl.Status) {
	head := fmt.Sprintf("job %s %s", st.Job, st.Phase)
	tail := fmt.Sprintf("  %s / %s", jobctl.HumanBytes(st.Bytes), jobctl.HumanBytes(st.Total))
	more := fmt.Sprintf("  %d/%d shards, %d in work, %d failed, now %s", st.Done, st.Shards, st.Claimed, st.Failed, st.Throughput.Now)
	if st.ETA != nil {
		more += ", eta " + fmtSeconds(*st.ETA)
	}
	r.head.Store(&head)
	r.tail.Store(&tail)
	r.more.Store(&more)
	r.job.SetTotal(max(st.Total, 1), false)
	r.job.SetCurrent(min(st.Bytes, max(st.Total, 1)))

	live := map[string]bool{}
	for _, n := range st.Nodes {
		live[n.ID] = true
		nb := r.nodes[n.ID]
		if nb == nil {
			nb = &nodeBar{}
			empty := ""
			nb.text.Store(&empty)
			name := fmt.Sprintf("  node %s", n.ID)
			nb.bar = r.p.AddBar(0, mpb.BarRemoveOnComplete(),
				mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
				mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return *nb.text.Load() })))
			r.nodes[n.ID] = nb
		}
		text := fmt.Sprintf("  %d done, %d in work, %s rows/s, heartbeat %s ago", n.ShardsDone, n.InWork,
			jobctl.HumanCount(n.Rate.RowsPerSec), fmtSeconds(n.HeartbeatAge))
		if n.Phase != "" && n.Phase != st.Phase { // the job's phase is on its line
			text += ", phase " + n.Phase
		}
		nb.text.Store(&text)
		nb.bar.SetTotal(int64(max(st.Shards, 1)), false)
		nb.bar.SetCurrent(int64(min(n.ShardsDone, max(st.Shards, 1))))
	}
	for id, nb := range r.nodes {
		if !live[id] {
			nb.bar.Abort(true)
			delete(r.nodes, id)
		}
	}
}

func (r *barRenderer) finish(last *jobctl.Status) {
	for id, nb := range r.nodes {
		nb.bar.Abort(true)
		delete(r.nodes, id)
	}
	if last != nil && last.Barrier != nil && last.Barrier.Status == meta.StatusSucceeded {
		r.job.SetTotal(-1, true)
	} else {
		r.job.Abort(false)
	}
	r.detail.Abort(false) // its last words stay on the screen
	r.p.Wait()
	if last != nil && last.Barrier != nil {
		last.Print(r.w)
	}
}
