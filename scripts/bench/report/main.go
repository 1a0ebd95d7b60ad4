// Command report summarises the runner's results (scripts/bench/run.sh):
// per loader the median wall time over the runs, rows/s and MB/s at that
// median, the peak RSS, and speed ratios against myloader and LOAD DATA.
//
//	report -results results.jsonl -rows N -bytes B
//	report -barrier 'DIR/n*.log'
//	report -phases 'DIR/storm-digest.*.err'
//
// Labels are "<loader>/<run>". Ratios are speed ratios: the other loader's
// median wall time over this one's, so above 1 means faster than it.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type result struct {
	Label   string  `json:"label"`
	WallSec float64 `json:"wall_s"`
	Exit    []int   `json:"exit"`
	RSSKiB  []int64 `json:"maxrss_kib"`
	MaxRSS  int64   `json:"max_maxrss_kib"`
	UserSec float64 `json:"user_s"`
	SysSec  float64 `json:"sys_s"`
	// Rows and Bytes (of CSV) are set by a run that loads part of the
	// dump (the Parquet rows): its rates are on them, not the dump's.
	Rows  int64 `json:"rows,omitempty"`
	Bytes int64 `json:"bytes,omitempty"`
}

type loader struct {
	name  string
	walls []float64
	byRun map[string]float64 // wall time by run number
	rss   int64              // largest over the runs
	cpu   []float64
	fail  int
	rows  int64 // of a run on part of the dump; 0: the dump's
	bytes int64
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func main() {
	path := flag.String("results", "results.jsonl", "the runner's JSON lines")
	rows := flag.Int64("rows", 0, "rows the dump holds")
	bytes := flag.Int64("bytes", 0, "bytes of the CSV dump (MB/s is computed on it for every loader)")
	myloader := flag.String("myloader", "myloader", "loader the first ratio compares with")
	loaddata := flag.String("loaddata", "load-data", "loader the second ratio compares with")
	barrier := flag.String("barrier", "", "instead: storm node logs (a glob) to read the time from the last shard done to the barrier from")
	phases := flag.String("phases", "", "instead: one-node storm logs (a glob), one a run, to read the import and verify phases' times from")
	flag.Parse()
	if *barrier != "" {
		if err := barrierLatency(*barrier); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
		return
	}
	if *phases != "" {
		if err := phaseTimes(*phases); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
		return
	}

	f, err := os.Open(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	defer f.Close()
	var order []string
	by := map[string]*loader{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue
		}
		name, run, _ := strings.Cut(r.Label, "/")
		l := by[name]
		if l == nil {
			l = &loader{name: name, byRun: map[string]float64{}}
			by[name] = l
			order = append(order, name)
		}
		if slices.ContainsFunc(r.Exit, func(c int) bool { return c != 0 }) {
			l.fail++
			continue
		}
		l.walls = append(l.walls, r.WallSec)
		l.byRun[run] = r.WallSec
		l.cpu = append(l.cpu, r.UserSec+r.SysSec)
		l.rss = max(l.rss, r.MaxRSS)
		l.rows, l.bytes = r.Rows, r.Bytes
	}
	ratio := func(base string, l *loader) string {
		b := by[base]
		if b == nil || len(b.walls) == 0 || len(l.walls) == 0 || l.rows != 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", median(b.walls)/median(l.walls))
	}
	fmt.Printf("| loader | runs | wall s (each run) | median wall s | rows/s | MB/s | peak RSS MiB | loader CPU s | speed vs %s | speed vs %s |\n", *myloader, *loaddata)
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, name := range order {
		l := by[name]
		if len(l.walls) == 0 {
			fmt.Printf("| %s | 0 (%d failed) | | | | | | | | |\n", name, l.fail)
			continue
		}
		var each []string
		for _, w := range l.walls {
			each = append(each, fmt.Sprintf("%.1f", w))
		}
		runs := fmt.Sprint(len(l.walls))
		if l.fail > 0 {
			runs += fmt.Sprintf(" (%d failed)", l.fail)
		}
		m := median(l.walls)
		rs, bs := *rows, *bytes
		if l.rows != 0 {
			rs, bs = l.rows, l.bytes
		}
		fmt.Printf("| %s | %s | %s | %.2f | %.0f | %.1f | %.0f | %.1f | %s | %s |\n", name, runs, strings.Join(each, ", "), m,
			float64(rs)/m, float64(bs)/1e6/m, float64(l.rss)/1024, median(l.cpu), ratio(*myloader, l), ratio(*loaddata, l))
	}
	for _, name := range []string{"storm-digest", "storm-digest64"} {
		digestCost(by["storm"], by[name], name)
	}
}

// digestCost prints what verify.mode = digest costs, paired by round: a
// round runs storm and storm-digest back to back, so their difference is
// less exposed to the machine's load drifting over the bench than the
// ratio of the medians is.
func digestCost(off, digest *loader, name string) {
	if off == nil || digest == nil {
		return
	}
	var diffs []float64
	var each []string
	for run, w := range digest.byRun {
		if o, ok := off.byRun[run]; ok {
			diffs = append(diffs, w-o)
		}
	}
	if len(diffs) == 0 {
		return
	}
	slices.Sort(diffs)
	for _, d := range diffs {
		each = append(each, fmt.Sprintf("%.1f", d))
	}
	m := median(diffs)
	fmt.Printf("\n%s - storm, paired by round: %s s; median %.2f s, %.0f%% of storm's median\n",
		name, strings.Join(each, ", "), m, 100*m/median(off.walls))
}

// barrierLatency reads storm's text logs and prints the time from the last
// "shard done" line to the "barrier written" line, over all the nodes.
func barrierLatency(glob string) error {
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no logs match %s", glob)
	}
	var lastDone, barrier time.Time
	for _, p := range files {
		err := eachLogLine(p, func(t time.Time, line string) {
			if strings.Contains(line, `msg="shard done"`) && t.After(lastDone) {
				lastDone = t
			}
			if strings.Contains(line, `msg="barrier written"`) {
				barrier = t
			}
		})
		if err != nil {
			return err
		}
	}
	if lastDone.IsZero() || barrier.IsZero() {
		return errors.New("no shard done or no barrier written line in the logs")
	}
	fmt.Printf("last shard done -> barrier written: %d ms (%s -> %s)\n", barrier.Sub(lastDone).Milliseconds(),
		lastDone.Format("15:04:05.000"), barrier.Format("15:04:05.000"))
	return nil
}

// eachLogLine calls fn with every line of a storm log (log/slog's text
// format) that starts with a time it can read.
func eachLogLine(path string, fn func(t time.Time, line string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		ts, ok := strings.CutPrefix(line, "time=")
		if !ok {
			continue
		}
		ts, _, _ = strings.Cut(ts, " ")
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			fn(t, line)
		}
	}
	return sc.Err()
}

// phaseTimes reads one-node storm logs, one a run, and prints per run the
// import phase (workers started to verify-plan leading) and the verify
// phases (from there to the barrier), then their medians.
func phaseTimes(glob string) error {
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no logs match %s", glob)
	}
	var imports, verifies []float64
	var each []string
	for _, p := range files {
		var start, plan, barrier time.Time
		err := eachLogLine(p, func(t time.Time, line string) {
			switch {
			case start.IsZero() && strings.Contains(line, `msg="phase import: starting workers"`):
				start = t
			case plan.IsZero() && strings.Contains(line, `msg="leading phase"`) && strings.Contains(line, "phase=verify-plan"):
				plan = t
			case strings.Contains(line, `msg="barrier written"`):
				barrier = t
			}
		})
		if err != nil {
			return err
		}
		if start.IsZero() || plan.IsZero() || barrier.IsZero() {
			return fmt.Errorf("%s: no import start, verify-plan or barrier line", p)
		}
		imports = append(imports, plan.Sub(start).Seconds())
		verifies = append(verifies, barrier.Sub(plan).Seconds())
		each = append(each, fmt.Sprintf("%.1f + %.1f", plan.Sub(start).Seconds(), barrier.Sub(plan).Seconds()))
	}
	fmt.Printf("import + verify s: %s; medians %.2f + %.2f\n", strings.Join(each, ", "), median(imports), median(verifies))
	return nil
}
