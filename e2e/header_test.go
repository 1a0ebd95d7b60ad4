package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"storm/internal/gendump"
	"storm/meta"
)

// source.csv.header = "auto": a dump whose CSV files differ, some with a
// header line (one in capitals, one naming its columns in quotes), some
// without, is imported by two nodes in shards smaller than the files (so
// chunks in the middle of a file with a header read it first), every row
// checked; the plan's summary says which files had a header.
func TestE2ECSVHeaderAuto(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 20_000, Format: "csv", FilesPerTable: 2, Header: true})
	files, _ := filepath.Glob(filepath.Join(e.gen.Dir, "*.csv"))
	slices.Sort(files)
	if len(files) < 4 {
		t.Fatalf("csv files %v", files)
	}
	var withHeader, without []string
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, rest, _ := bytes.Cut(data, []byte("\n"))
		end := "\n" // some tables' files end lines in "\r\n"
		if c, ok := bytes.CutSuffix(first, []byte("\r")); ok {
			first, end = c, "\r\n"
		}
		switch i % 4 {
		case 0, 2:
			data = rest
			without = append(without, filepath.Base(f))
		case 1:
			data = append(append(bytes.ToUpper(first), end...), rest...)
			withHeader = append(withHeader, filepath.Base(f))
		case 3:
			quoted := `"` + strings.ReplaceAll(string(first), ",", `","`) + `"`
			data = append([]byte(quoted+end), rest...)
			withHeader = append(withHeader, filepath.Base(f))
		}
		writeFile(t, f, data)
	}
	cfg := e.config(map[string]string{"source.csv.header": `"auto"`, "import.shard-size": "65536"})
	nodes := []*proc{e.node("n1", cfg), e.node("n2", cfg)}
	for _, p := range nodes {
		if code := p.wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("%s exited %d:\n%s", p.id, code, tail(p.log(), 20))
		}
	}
	b := e.barrier()
	if b == nil || b.Status != meta.StatusSucceeded || b.Rows != 20_000 {
		t.Fatalf("barrier %+v", b)
	}
	if b.Shards <= len(files) {
		t.Errorf("%d shards for %d files: none was split", b.Shards, len(files))
	}
	e.checkTarget()
	sum := e.planSummary(meta.MainSource)
	if !slices.Equal(sum.CSVHeader, withHeader) || !slices.Equal(sum.CSVNoHeader, without) {
		t.Errorf("plan summary: header %q, no header %q; want %q, %q", sum.CSVHeader, sum.CSVNoHeader, withHeader, without)
	}
}

// planSummary reads the plan summary of a source.
func (e *env) planSummary(src string) meta.PlanSummary {
	e.t.Helper()
	var sum meta.PlanSummary
	var marker meta.PhaseMarker
	key := e.job.PhaseMarker(meta.PlanSource(src))
	resp, err := e.etcd.Get(e.t.Context(), key)
	if err != nil || len(resp.Kvs) != 1 {
		e.t.Fatalf("plan marker: %v %v", resp, err)
	}
	if err := meta.Decode(key, resp.Kvs[0].Value, &marker); err != nil {
		e.t.Fatal(err)
	}
	if err := meta.Decode(key, marker.Summary, &sum); err != nil {
		e.t.Fatal(err)
	}
	return sum
}
