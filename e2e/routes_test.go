package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"storm/internal/gendump"
	"storm/meta"
)

// withRules appends [[source.files]] tables (TOML text) to a storm.toml.
func (e *env) withRules(path, rules string) string {
	e.t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + rules + "\n"); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// writeCompressed writes data to path, gzip- or zstd-compressed by the suffix.
func writeCompressed(t *testing.T, path string, data []byte) {
	t.Helper()
	var b bytes.Buffer
	switch {
	case strings.HasSuffix(path, ".gz"):
		w := gzip.NewWriter(&b)
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case strings.HasSuffix(path, ".zst"):
		w, err := zstd.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		b.Write(data)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// exportDump lays the generated dump out as an export tool might (see
// TestE2ERoutes) in a new directory, and returns it and its number of data
// parts.
func (e *env) exportDump() (string, int) {
	t := e.t
	t.Helper()
	src := e.gen.DB
	dump := filepath.Join(e.dir, "export-dump")
	dataName := regexp.MustCompile(`^` + regexp.QuoteMeta(src) + `\.(\w+)\.(\d+)\.(csv|sql)$`)
	entries, err := os.ReadDir(e.gen.Dir)
	if err != nil {
		t.Fatal(err)
	}
	parts := 0
	for _, ent := range entries {
		name := ent.Name()
		data, err := os.ReadFile(filepath.Join(e.gen.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var to string
		switch m := dataName.FindStringSubmatch(name); {
		case name == src+"-schema-create.sql":
			to = "ddl/database.sql"
		case strings.HasSuffix(name, "-schema.sql"):
			to = "ddl/" + strings.TrimSuffix(strings.TrimPrefix(name, src+"."), "-schema.sql") + ".sql"
		case m != nil:
			var k int
			fmt.Sscan(m[2], &k)
			to = fmt.Sprintf("export/%s_part%d.%s%s", m[1], k+1, m[3], []string{"", ".gz", ".zst"}[k%3])
			parts++
		default:
			t.Fatalf("unexpected generated file %s", name)
		}
		writeCompressed(t, filepath.Join(dump, filepath.FromSlash(to)), data)
	}
	if parts != 12 {
		t.Fatalf("%d data files generated, want 12", parts)
	}
	// Decoys: a scratch copy that would fail the job if it were imported,
	// and a note no rule names.
	writeCompressed(t, filepath.Join(dump, "export", "customers_part9.csv.tmp"), []byte("not,a,customer\n"))
	writeCompressed(t, filepath.Join(dump, "export", "README.txt"), []byte("exported by hand\n"))
	// A table with a schema and no data: created, and named in the barrier.
	writeCompressed(t, filepath.Join(dump, "ddl", "lonely.sql"), []byte("CREATE TABLE lonely (id INT PRIMARY KEY);\n"))
	return dump, parts
}

// exportRules are the [[source.files]] rules that route exportDump's
// layout into database db.
func exportRules(db string) string {
	return fmt.Sprintf(`
[[source.files]]
pattern = '\.tmp$'
type = "ignore"

[[source.files]]
pattern = '^export/(\w+)_part\d+\.(csv|sql)(?:\.(gz|zst))?$'
schema = %[1]q
table = "$1"
type = "$2"
compression = "$3"

[[source.files]]
pattern = '^ddl/database\.sql$'
schema = %[1]q
type = "schema"

[[source.files]]
pattern = '^ddl/(\w+)\.sql$'
schema = %[1]q
table = "$1"
type = "table-schema"
`, db)
}

// A dump laid out as an export tool might, not as mydumper: no database
// in the file names, data parts in a subdirectory (plain, so big CSV parts
// are split into shards, gzip and zstd), the schemas in another, and files
// to ignore. [[source.files]] rules route it, into a database of another
// name than its CREATE DATABASE says; three nodes import it and every row
// is checked.
func TestE2ERoutes(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 20_000, Format: "mixed", FilesPerTable: 3, Header: true})
	src := e.gen.DB
	dump, parts := e.exportDump()
	e.gen.DB = src + "_copy" // the rows are the same: the seed decides them
	cfg := e.withRules(e.config(map[string]string{"source.dir": fmt.Sprintf("%q", dump)}), exportRules(e.gen.DB))
	start := time.Now()
	nodes := []*proc{e.node("n1", cfg), e.node("n2", cfg), e.node("n3", cfg)}
	for _, p := range nodes {
		if code := p.wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("%s exited %d:\n%s", p.id, code, tail(p.log(), 20))
		}
	}
	t.Logf("imported in %s", time.Since(start).Round(time.Millisecond))
	b := e.barrier()
	if b == nil || b.Status != meta.StatusSucceeded || b.Rows != 20_000 || len(b.Tables) < 4 {
		t.Fatalf("barrier %+v", b)
	}
	if want := e.gen.DB + ".lonely"; strings.Join(b.NoData, " ") != want {
		t.Errorf("barrier's tables without data %q, want %q", b.NoData, want)
	}
	if want := []string{filepath.Join(dump, "export", "README.txt"), filepath.Join(dump, "export", "customers_part9.csv.tmp")}; !slices.Equal(b.Skipped, want) {
		t.Errorf("barrier's skipped files %q, want %q", b.Skipped, want)
	}
	for _, r := range b.Tables {
		if r.DB != e.gen.DB || !r.OK {
			t.Errorf("table result %+v", r)
		}
	}
	if b.Shards <= parts {
		t.Errorf("%d shards: the uncompressed CSV parts were not split", b.Shards)
	}
	var sum meta.PlanSummary
	var marker meta.PhaseMarker
	key := e.job.PhaseMarker(meta.PlanSource(meta.MainSource))
	resp, err := e.etcd.Get(t.Context(), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("plan marker: %v %v", resp, err)
	}
	if err := meta.Decode(key, resp.Kvs[0].Value, &marker); err != nil {
		t.Fatal(err)
	}
	if err := meta.Decode(key, marker.Summary, &sum); err != nil {
		t.Fatal(err)
	}
	if strings.Join(sum.Skipped, " ") != "export/README.txt export/customers_part9.csv.tmp" {
		t.Errorf("skipped %q", sum.Skipped)
	}
	var dbs int
	if err := e.db().QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", src).Scan(&dbs); err != nil || dbs != 0 {
		t.Errorf("the dump's own database name %s was created (%d, %v)", src, dbs, err)
	}
	e.checkTarget()
}
