// Command report summarises the bench (scripts/bench/run.sh): per dataset
// and loader the median wall time over the rounds, rows/s and MB/s at that
// median, the peak RSS, speed ratios against the baselines, the goals of
// storm's default config, and where storm's seconds went.
//
//	report -results results.jsonl -datasets datasets.jsonl [-captures DIR]
//	report -capture -etcd URL -job ID -workers N -o FILE
//	report -barrier 'DIR/n*.log'
//	report -phases 'DIR/storm-digest.*.err'
//
// Labels are "<dataset>/<loader>/<run>" ("<loader>/<run>": dataset "").
// Ratios are speed ratios: the other loader's median wall time over this
// one's, so above 1 means faster than it.
//
// -capture runs right after a storm run, while its etcd is still up: it
// saves what storm recorded of the job (the barrier, the phase markers, the
// done records) to FILE, from which the report's breakdown reads where the
// run's seconds went.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/meta"
)

type result struct {
	Label   string    `json:"label"`
	Start   time.Time `json:"start"`
	WallSec float64   `json:"wall_s"`
	Exit    []int     `json:"exit"`
	RSSKiB  []int64   `json:"maxrss_kib"`
	MaxRSS  int64     `json:"max_maxrss_kib"`
	UserSec float64   `json:"user_s"`
	SysSec  float64   `json:"sys_s"`
	// ServerSec is the server's CPU during the run (0: not measured).
	ServerSec float64 `json:"server_cpu_s"`
	// Rows, Bytes and Part are set by a run that loads part of its
	// dataset (storm-parquet*: one table, Part): its rates are on them.
	Rows  int64  `json:"rows,omitempty"`
	Bytes int64  `json:"bytes,omitempty"`
	Part  string `json:"part,omitempty"`
}

// dataset is one line of -datasets.
type dataset struct {
	Name   string `json:"name"`
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"` // of the input storm reads; MB/s is computed on it for every loader
	Tables int    `json:"tables"`
	Desc   string `json:"desc"`
}

type loader struct {
	name    string
	walls   []float64
	byRun   map[string]float64 // wall time by run number
	results map[string]result  // by run number
	rss     int64              // largest over the runs
	cpu     []float64
	server  []float64 // the server's CPU seconds, per run
	fail    int
	// rows, bytes and part: of a loader that loads part of the dataset
	// (result.Part); rows 0: the whole dataset.
	rows, bytes int64
	part        string
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
	datasets := flag.String("datasets", "", "the datasets' JSON lines (name, rows, bytes, tables, desc)")
	captures := flag.String("captures", "", "directory of -capture files, <dataset>.<loader>.<run>.json")
	rows := flag.Int64("rows", 0, "without -datasets: rows the dump holds")
	bytes := flag.Int64("bytes", 0, "without -datasets: bytes of the dump")
	mainLoader := flag.String("storm", "storm", "the loader the goals are about: storm with its default config")

	capture := flag.Bool("capture", false, "instead: save a finished job's records from etcd to -o")
	etcd := flag.String("etcd", "", "with -capture: an etcd endpoint")
	job := flag.String("job", "", "with -capture: the job id")
	prefix := flag.String("prefix", meta.DefaultPrefix, "with -capture: etcd.prefix")
	workers := flag.Int("workers", 0, "with -capture: workers over all the job's nodes")
	out := flag.String("o", "", "with -capture: the file to write")

	barrier := flag.String("barrier", "", "instead: storm node logs (a glob) to read the time from the last shard done to the barrier from")
	phases := flag.String("phases", "", "instead: one-node storm logs (a glob), one a run, to read the import and verify phases' times from")
	flag.Parse()
	var err error
	switch {
	case *capture:
		err = captureJob(*etcd, *prefix, *job, *workers, *out)
	case *barrier != "":
		err = barrierLatency(*barrier)
	case *phases != "":
		err = phaseTimes(*phases)
	default:
		err = report(*path, *datasets, *captures, *rows, *bytes, *mainLoader)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func report(path, datasetsFile, captures string, rows, bytes int64, main string) error {
	sets := []dataset{{Rows: rows, Bytes: bytes}}
	if datasetsFile != "" {
		sets = nil
		if err := eachJSONLine(datasetsFile, func(b []byte) {
			var d dataset
			if json.Unmarshal(b, &d) == nil {
				sets = append(sets, d)
			}
		}); err != nil {
			return err
		}
	}
	by := map[string]map[string]*loader{} // dataset, loader
	order := map[string][]string{}
	if err := eachJSONLine(path, func(b []byte) {
		var r result
		if json.Unmarshal(b, &r) != nil {
			return
		}
		parts := strings.Split(r.Label, "/")
		if len(parts) == 2 {
			parts = append([]string{""}, parts...)
		}
		if len(parts) != 3 {
			return
		}
		ds, name, run := parts[0], parts[1], parts[2]
		if by[ds] == nil {
			by[ds] = map[string]*loader{}
		}
		l := by[ds][name]
		if l == nil {
			l = &loader{name: name, byRun: map[string]float64{}, results: map[string]result{}}
			by[ds][name] = l
			order[ds] = append(order[ds], name)
		}
		if slices.ContainsFunc(r.Exit, func(c int) bool { return c != 0 }) {
			l.fail++
			return
		}
		l.walls = append(l.walls, r.WallSec)
		l.byRun[run] = r.WallSec
		l.results[run] = r
		l.cpu = append(l.cpu, r.UserSec+r.SysSec)
		l.server = append(l.server, r.ServerSec)
		l.rss = max(l.rss, r.MaxRSS)
		if r.Part != "" {
			l.rows, l.bytes, l.part = r.Rows, r.Bytes, r.Part
		}
	}); err != nil {
		return err
	}
	for _, d := range sets {
		loaders := by[d.Name]
		if loaders == nil {
			continue
		}
		if d.Name != "" {
			fmt.Printf("### Dataset %s: %s\n\n", d.Name, d.Desc)
		}
		table(d, loaders, order[d.Name])
		goals(loaders, main)
		cpuBudget(loaders, order[d.Name], main)
		for _, p := range [][2]string{{"storm-nodigest", main}, {"storm-digest64", main}, {"storm-s3", main},
			{"storm-parquet", "storm-parquet-csv"}} {
			pairedCost(loaders[p[0]], loaders[p[1]], p[0], p[1])
		}
		if captures != "" {
			breakdowns(captures, d.Name, loaders, order[d.Name])
		}
		fmt.Println()
	}
	return nil
}

// The baselines the ratios and goals compare with.
const (
	loadData     = "load-data"
	loadDeferred = "load-data-deferred"
	myloader     = "myloader"
)

// ratio is "-" for a loader that loads part of the dataset: the baselines
// load all of it.
func ratio(base, l *loader) string {
	if base == nil || len(base.walls) == 0 || l == nil || len(l.walls) == 0 || l.rows != 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", median(base.walls)/median(l.walls))
}

func table(d dataset, by map[string]*loader, order []string) {
	fmt.Printf("| loader | runs | wall s (each run) | median wall s | rows/s | MB/s | peak RSS MiB | loader CPU s | server CPU s | speed vs %s | vs %s | vs %s |\n",
		loadData, myloader, loadDeferred)
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	var parts []string
	for _, name := range order {
		l := by[name]
		if len(l.walls) == 0 {
			fmt.Printf("| %s | 0 (%d failed) | | | | | | | | | | |\n", name, l.fail)
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
		rows, bytes := d.Rows, d.Bytes
		if l.rows != 0 {
			rows, bytes = l.rows, l.bytes
			name += " (" + l.part + " only)"
			parts = append(parts, fmt.Sprintf("%s loads table %s alone: %d rows, %.1f MB as CSV", l.name, l.part, l.rows, float64(l.bytes)/1e6))
		}
		server := "-"
		if ms := median(l.server); ms > 0 {
			server = fmt.Sprintf("%.1f", ms)
		}
		fmt.Printf("| %s | %s | %s | %.2f | %.0f | %.1f | %.0f | %.1f | %s | %s | %s | %s |\n", name, runs, strings.Join(each, ", "), m,
			float64(rows)/m, float64(bytes)/1e6/m, float64(l.rss)/1024, median(l.cpu), server,
			ratio(by[loadData], l), ratio(by[myloader], l), ratio(by[loadDeferred], l))
	}
	if len(parts) > 0 {
		fmt.Printf("\n%s. Rows/s and MB/s of such a row are on that table's rows and CSV bytes (for the Parquet row too), and no speed ratio is given: the baselines load the whole dataset.\n",
			strings.Join(parts, "; "))
	}
}

// goals prints issue #15's goals for storm's default config: at least
// 1.15x the speed of LOAD DATA and of myloader, a wall time within 1.05x of
// the by-hand deferred-index load's, and a peak RSS under 256 MiB.
func goals(by map[string]*loader, main string) {
	s := by[main]
	if s == nil || len(s.walls) == 0 {
		return
	}
	fmt.Printf("\nGoals of %s (default config), medians of %d round(s):\n\n", main, len(s.walls))
	fmt.Println("| goal | wanted | measured | met |")
	fmt.Println("|---|---|---|---|")
	speed := func(base string) {
		b := by[base]
		if b == nil || len(b.walls) == 0 {
			fmt.Printf("| speed vs %s | >= 1.15x | not run | - |\n", base)
			return
		}
		r := median(b.walls) / median(s.walls)
		fmt.Printf("| speed vs %s | >= 1.15x | %.2fx (%.2f s vs %.2f s) | %s |\n", base, r, median(s.walls), median(b.walls), yes(r >= 1.15))
	}
	speed(loadData)
	speed(myloader)
	if b := by[loadDeferred]; b != nil && len(b.walls) > 0 {
		r := median(s.walls) / median(b.walls)
		fmt.Printf("| wall vs %s (verifies nothing) | <= 1.05x | %.2fx (%.2f s vs %.2f s) | %s |\n", loadDeferred, r,
			median(s.walls), median(b.walls), yes(r <= 1.05))
	} else {
		fmt.Printf("| wall vs %s | <= 1.05x | not run | - |\n", loadDeferred)
	}
	mib := float64(s.rss) / 1024
	fmt.Printf("| peak RSS | < 256 MiB | %.0f MiB (largest of the rounds) | %s |\n", mib, yes(mib < 256))
}

// cpuBudget prints where each loader's CPU went, the server's and its own,
// against its wall time: on a machine whose cores are all busy through a
// run, the wall time is about the CPU seconds over the cores, so a loader
// is faster only by making the server and itself do less. The paired rows
// show what storm's digest verification costs in CPU, round by round.
func cpuBudget(by map[string]*loader, order []string, main string) {
	cores := runtime.NumCPU()
	var rows []string
	for _, name := range order {
		l := by[name]
		if len(l.walls) == 0 || median(l.server) == 0 {
			continue
		}
		total := make([]float64, len(l.cpu))
		for i := range l.cpu {
			total[i] = l.cpu[i] + l.server[i]
		}
		w, t := median(l.walls), median(total)
		rows = append(rows, fmt.Sprintf("| %s | %.1f | %.1f | %.1f | %.2f | %.2f | %.0f%% |", name, median(l.server), median(l.cpu), t,
			t/float64(cores), w, 100*t/(w*float64(cores))))
	}
	if len(rows) == 0 {
		return
	}
	fmt.Printf("\nCPU seconds (medians; %d cores): the server's, the loader's own, their sum, that sum over the cores (the wall time of a run that kept every core busy), the wall time, and how busy the cores were on average.\n\n", cores)
	fmt.Println("| loader | server CPU s | loader CPU s | total CPU s | total / cores s | wall s | cores busy |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
	v, m := by["storm-nodigest"], by[main]
	if v == nil || m == nil {
		return
	}
	var srv, own []float64
	for run, r := range m.results {
		if o, ok := v.results[run]; ok && r.ServerSec > 0 && o.ServerSec > 0 {
			srv = append(srv, r.ServerSec-o.ServerSec)
			own = append(own, (r.UserSec+r.SysSec)-(o.UserSec+o.SysSec))
		}
	}
	if len(srv) > 0 {
		fmt.Printf("\nThe digest's CPU, %s - storm-nodigest paired by round (medians of %d): server %+.1f s, storm %+.1f s; over %d cores, %+.2f s of wall time.\n",
			main, len(srv), median(srv), median(own), cores, (median(srv)+median(own))/float64(cores))
	}
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// pairedCost prints what a variant's change costs against the main row,
// paired by round: a round runs both back to back, so their difference is
// less exposed to the machine's load drifting over the bench than the
// ratio of the medians is.
func pairedCost(variant, main *loader, name, mainName string) {
	if variant == nil || main == nil {
		return
	}
	var diffs []float64
	var each []string
	for run, w := range variant.byRun {
		if o, ok := main.byRun[run]; ok {
			diffs = append(diffs, w-o)
		}
	}
	if len(diffs) == 0 {
		return
	}
	slices.Sort(diffs)
	for _, d := range diffs {
		each = append(each, fmt.Sprintf("%+.1f", d))
	}
	m := median(diffs)
	fmt.Printf("\n%s - %s, paired by round: %s s; median %+.2f s, %+.0f%% of %s's median\n",
		name, mainName, strings.Join(each, ", "), m, 100*m/median(main.walls), mainName)
}

// --- where storm's seconds go ------------------------------------------------

// captured is what -capture saves of a finished job.
type captured struct {
	Job     string                      `json:"job"`
	Workers int                         `json:"workers"`
	Barrier json.RawMessage             `json:"barrier"`
	Phases  map[string]meta.PhaseMarker `json:"phases"`
	Done    []meta.Done                 `json:"done"`
}

func captureJob(endpoint, prefix, jobID string, workers int, out string) error {
	if endpoint == "" || jobID == "" || out == "" {
		return errors.New("-capture needs -etcd, -job and -o")
	}
	job, err := meta.NewJob(prefix, jobID)
	if err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := captured{Job: jobID, Workers: workers, Phases: map[string]meta.PhaseMarker{}}
	resp, err := cli.Get(ctx, job.Barrier())
	if err != nil {
		return err
	}
	if len(resp.Kvs) > 0 {
		c.Barrier = resp.Kvs[0].Value
	}
	if resp, err = cli.Get(ctx, job.Dir(meta.KindPhase), clientv3.WithPrefix()); err != nil {
		return err
	}
	for _, kv := range resp.Kvs {
		var m meta.PhaseMarker
		if json.Unmarshal(kv.Value, &m) == nil {
			c.Phases[strings.TrimPrefix(string(kv.Key), job.Dir(meta.KindPhase))] = m
		}
	}
	if resp, err = cli.Get(ctx, job.Dir(meta.KindDone), clientv3.WithPrefix()); err != nil {
		return err
	}
	for _, kv := range resp.Kvs {
		var d meta.Done
		if json.Unmarshal(kv.Value, &d) == nil {
			c.Done = append(c.Done, d)
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}

// breakdown is where one storm run's seconds went. The wall segments add up
// to the run's wall time; the work seconds (Busy's shard seconds, Steps) are
// summed over workers and tables and can overlap each other and the import.
type breakdown struct {
	Start, Plan, Import, AfterImport, Exit float64            // wall segments; they add up to the run's wall time
	Verify, Finalize                       float64            // parts of AfterImport, from the phase markers
	ShardSec                               float64            // work: the shards' seconds, summed (the done records)
	Busy                                   float64            // of the workers during Import: ShardSec / (workers x Import)
	IdleWorkerSec                          float64            // (1 - Busy) x Import: the seconds an average worker waited
	Steps                                  map[string]float64 // work: the barrier's step seconds by step, summed over the tables
	Notes                                  []string
}

// analyse cuts a run's wall time at what storm recorded: the spec's
// creation (the barrier's start), the plan and prepare markers, the last
// shard done, the barrier. The barrier's per-table steps are summed by
// step (collectSteps).
func analyse(r result, c captured) (breakdown, error) {
	var b breakdown
	var bar meta.Barrier
	if len(c.Barrier) == 0 || json.Unmarshal(c.Barrier, &bar) != nil || bar.Finished.IsZero() {
		return b, errors.New("no barrier")
	}
	t0, tEnd := r.Start, r.Start.Add(time.Duration(r.WallSec*float64(time.Second)))
	planned, prepared := bar.Started, time.Time{}
	var verified, finalized time.Time
	for name, m := range c.Phases {
		switch {
		case name == string(meta.PhasePlan) || strings.HasPrefix(name, string(meta.PhasePlanSource)+"/"):
			planned = later(planned, m.At)
		case name == string(meta.PhasePrepare):
			prepared = m.At
		case name == string(meta.PhaseVerify):
			verified = m.At
		case name == string(meta.PhaseFinalize):
			finalized = m.At
		}
	}
	prepared = later(prepared, planned)
	var lastDone time.Time
	for _, d := range c.Done {
		lastDone = later(lastDone, d.At)
		b.ShardSec += d.Seconds
	}
	if lastDone.IsZero() {
		lastDone = prepared
		b.Notes = append(b.Notes, "no done records")
	}
	sec := func(a, z time.Time) float64 { return max(z.Sub(a).Seconds(), 0) }
	b.Start = sec(t0, bar.Started)
	b.Plan = sec(bar.Started, prepared)
	b.Import = sec(prepared, lastDone)
	b.AfterImport = sec(lastDone, bar.Finished)
	b.Exit = sec(bar.Finished, tEnd)
	if !verified.IsZero() {
		b.Verify = sec(lastDone, verified)
		if !finalized.IsZero() {
			b.Finalize = sec(later(verified, lastDone), finalized)
		}
	}
	if c.Workers > 0 && b.Import > 0 {
		b.Busy = min(b.ShardSec/(float64(c.Workers)*b.Import), 1)
		b.IdleWorkerSec = (1 - b.Busy) * b.Import
	}
	b.Steps = collectSteps(bar)
	return b, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// collectSteps sums the barrier's per-table steps (meta.TableResult.Steps)
// by step name over the tables: indexes (the deferred index build), check
// (the index check), analyze, verify-plan (the table's verify ranges
// written) and verify (its ranges' read-back, already summed over the
// ranges by storm). Each is a table's own work seconds: tables' steps run
// beside each other and beside other tables' import, so the sums are not
// wall time.
func collectSteps(bar meta.Barrier) map[string]float64 {
	steps := map[string]float64{}
	for _, t := range bar.Tables {
		for _, st := range t.Steps {
			steps[st.Step] += st.Seconds
		}
	}
	return steps
}

// stepOrder is the order the report shows the steps in (the order a table
// goes through them); any other step follows, by name.
var stepOrder = []string{"indexes", "check", "analyze", "verify-plan", "verify"}

var stepTitle = map[string]string{
	"indexes": "index build", "check": "index check", "analyze": "ANALYZE",
	"verify-plan": "verify ranges written", "verify": "verify read-back",
}

// stepsExplained: the step columns' meaning is printed once a report.
var stepsExplained bool

// breakdowns prints, for every storm loader of a dataset with captures,
// the medians over its runs of where its wall time went, then its work
// seconds.
func breakdowns(dir, ds string, by map[string]*loader, order []string) {
	for _, name := range order {
		l := by[name]
		// The embedding runs' etcd is gone when they end: nothing captured.
		if !strings.HasPrefix(name, "storm") || name == "storm-embedded" || name == "storm-3nodes" || len(l.results) == 0 {
			continue
		}
		var bs []breakdown
		var missing []string
		runs := make([]string, 0, len(l.results))
		for run := range l.results {
			runs = append(runs, run)
		}
		sort.Strings(runs)
		workers := 0
		for _, run := range runs {
			file := filepath.Join(dir, strings.Trim(strings.Join([]string{ds, name, run}, "."), ".")+".json")
			raw, err := os.ReadFile(file)
			var c captured
			if err == nil {
				err = json.Unmarshal(raw, &c)
			}
			var b breakdown
			if err == nil {
				b, err = analyse(l.results[run], c)
			}
			if err != nil {
				missing = append(missing, fmt.Sprintf("run %s: %v", run, err))
				continue
			}
			workers = c.Workers
			bs = append(bs, b)
		}
		if len(bs) == 0 {
			fmt.Printf("\nWhere %s's seconds went: nothing recorded (%s)\n", name, strings.Join(missing, "; "))
			continue
		}
		m := func(f func(breakdown) float64) float64 {
			var v []float64
			for _, b := range bs {
				v = append(v, f(b))
			}
			return median(v)
		}
		fmt.Printf("\nWhere %s's seconds went (medians of %d run(s), from its barrier, phase markers and done records).\n", name, len(bs))
		fmt.Println("Wall seconds, one after the other; they add up to the run's wall time:")
		fmt.Println()
		fmt.Println("| start (process, etcd, join) | plan + prepare | import (to the last shard done) | after import: verify | finalize | all after import | exit |")
		fmt.Println("|---|---|---|---|---|---|---|")
		fmt.Printf("| %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
			m(func(b breakdown) float64 { return b.Start }), m(func(b breakdown) float64 { return b.Plan }),
			m(func(b breakdown) float64 { return b.Import }), m(func(b breakdown) float64 { return b.Verify }),
			m(func(b breakdown) float64 { return b.Finalize }), m(func(b breakdown) float64 { return b.AfterImport }),
			m(func(b breakdown) float64 { return b.Exit }))
		seen := map[string]bool{}
		for _, b := range bs {
			for s := range b.Steps {
				seen[s] = true
			}
		}
		var names []string
		for _, s := range stepOrder {
			if seen[s] {
				names = append(names, s)
				delete(seen, s)
			}
		}
		rest := make([]string, 0, len(seen))
		for s := range seen {
			rest = append(rest, s)
		}
		sort.Strings(rest)
		names = append(names, rest...)
		fmt.Printf("\nWork seconds, summed over %d worker(s) and over the tables: they overlap each other and the import, so they do not add up to the wall time:\n\n", workers)
		head, sep, row := "| import: shards' seconds | worker busy in import | idle worker s in import (an average worker) |", "|---|---|---|", fmt.Sprintf("| %.2f | %.0f%% | %.2f |",
			m(func(b breakdown) float64 { return b.ShardSec }), 100*m(func(b breakdown) float64 { return b.Busy }),
			m(func(b breakdown) float64 { return b.IdleWorkerSec }))
		for _, s := range names {
			title := stepTitle[s]
			if title == "" {
				title = s
			}
			head += fmt.Sprintf(" %s (%s) |", title, s)
			sep += "---|"
			row += fmt.Sprintf(" %.2f |", m(func(b breakdown) float64 { return b.Steps[s] }))
		}
		fmt.Println(head)
		fmt.Println(sep)
		fmt.Println(row)
		switch {
		case len(names) == 0:
			fmt.Println("\nNo per-table steps in the barrier: no index was deferred, no ANALYZE ran and nothing was read back (verify off, or a storm before the steps).")
		case !stepsExplained:
			stepsExplained = true
			fmt.Println("\nThe step columns are the barrier's `tables[].steps`, each table's step seconds summed over the tables. A table's steps (index build, index check, ANALYZE, its verify ranges) start when its own last shard is done, and its verify read-back (summed over its ranges) runs while other tables still import: so a step's seconds may lie inside the import's wall seconds, after it, or both. Only \"all after import\" is wall time that no shard overlapped.")
		}
		if len(missing) > 0 {
			fmt.Printf("\n(not counted: %s)\n", strings.Join(missing, "; "))
		}
	}
}

// --- log readers -------------------------------------------------------------

func eachJSONLine(path string, fn func([]byte)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		fn(sc.Bytes())
	}
	return sc.Err()
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
