// Command report summarises the runner's results (scripts/bench/run.sh):
// per loader the median wall time over the runs, rows/s and MB/s at that
// median, the peak RSS, and speed ratios against myloader and LOAD DATA.
//
//	report -results results.jsonl -rows N -bytes B
//	report -barrier 'DIR/n*.log'
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
}

type loader struct {
	name  string
	walls []float64
	rss   int64 // largest over the runs
	cpu   []float64
	fail  int
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
	flag.Parse()
	if *barrier != "" {
		if err := barrierLatency(*barrier); err != nil {
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
		name, _, _ := strings.Cut(r.Label, "/")
		l := by[name]
		if l == nil {
			l = &loader{name: name}
			by[name] = l
			order = append(order, name)
		}
		if slices.ContainsFunc(r.Exit, func(c int) bool { return c != 0 }) {
			l.fail++
			continue
		}
		l.walls = append(l.walls, r.WallSec)
		l.cpu = append(l.cpu, r.UserSec+r.SysSec)
		l.rss = max(l.rss, r.MaxRSS)
	}
	ratio := func(base string, l *loader) string {
		b := by[base]
		if b == nil || len(b.walls) == 0 || len(l.walls) == 0 {
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
		fmt.Printf("| %s | %s | %s | %.2f | %.0f | %.1f | %.0f | %.1f | %s | %s |\n", name, runs, strings.Join(each, ", "), m,
			float64(*rows)/m, float64(*bytes)/1e6/m, float64(l.rss)/1024, median(l.cpu), ratio(*myloader, l), ratio(*loaddata, l))
	}
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
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			done := strings.Contains(line, `msg="shard done"`)
			written := strings.Contains(line, `msg="barrier written"`)
			if !done && !written || !strings.HasPrefix(line, "time=") {
				continue
			}
			ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
			t, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				continue
			}
			if done && t.After(lastDone) {
				lastDone = t
			}
			if written {
				barrier = t
			}
		}
		f.Close()
	}
	if lastDone.IsZero() || barrier.IsZero() {
		return errors.New("no shard done or no barrier written line in the logs")
	}
	fmt.Printf("last shard done -> barrier written: %d ms (%s -> %s)\n", barrier.Sub(lastDone).Milliseconds(),
		lastDone.Format("15:04:05.000"), barrier.Format("15:04:05.000"))
	return nil
}
