package e2e

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"storm/internal/gendump"
	"storm/internal/parquetgen"
	"storm/meta"
)

// pqDump writes a dump of one table, pq, as Parquet files written by Arrow:
// one file per compression, rowsPerFile rows each in row groups of
// rowGroup rows. It returns the dump's directory.
func pqDump(t *testing.T, e *env, rowsPerFile int, rowGroup int64, schema string) string {
	t.Helper()
	dir := e.gen.Dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if schema == "" {
		schema = parquetgen.CreateTable("pq")
	}
	writeFile(t, filepath.Join(dir, e.gen.DB+".pq-schema.sql"), []byte(schema+";\n"))
	for i, comp := range []string{"snappy", "gzip", "zstd", "none"} {
		path := filepath.Join(dir, fmt.Sprintf("%s.pq.%05d.parquet", e.gen.DB, i+1))
		o := parquetgen.Options{FirstID: int64(i*rowsPerFile + 1), Rows: rowsPerFile, RowGroup: rowGroup, Compression: comp, Seed: 11}
		if err := parquetgen.Write(path, o); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// connExec runs a statement on one connection, failing the test on error.
func connExec(t *testing.T, conn *sql.Conn, stmt string) {
	t.Helper()
	if _, err := conn.ExecContext(t.Context(), stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// pqCopy loads rows 1..n of the generated values into db.pq_copy with
// INSERT statements: the same rows as the dump's, not through storm.
func pqCopy(t *testing.T, e *env, n int) {
	t.Helper()
	ctx := t.Context()
	conn, err := e.db().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	connExec(t, conn, "SET time_zone = '+00:00'")
	connExec(t, conn, "USE `"+e.gen.DB+"`")
	connExec(t, conn, parquetgen.CreateTable("pq_copy"))
	const batch = 200
	marks := "(" + strings.TrimSuffix(strings.Repeat("?,", len(parquetgen.Columns)), ",") + ")"
	for from := 1; from <= n; from += batch {
		var args []any
		var tuples []string
		for id := from; id < from+batch && id <= n; id++ {
			row := parquetgen.Row(11, int64(id))
			for k, c := range parquetgen.Columns {
				args = append(args, parquetgen.SQLValue(c, row[k]))
			}
			tuples = append(tuples, marks)
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO pq_copy VALUES "+strings.Join(tuples, ","), args...); err != nil {
			t.Fatalf("insert rows from %d: %v", from, err)
		}
	}
}

// comparePQ compares db.pq with db.pq_copy row by row, in id order.
func comparePQ(t *testing.T, e *env, want int) {
	t.Helper()
	conn, err := e.db().Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	connExec(t, conn, "SET time_zone = '+00:00'")
	read := func(table string) []string {
		var cols []string
		for _, c := range parquetgen.Columns {
			cols = append(cols, "`"+c.Name+"`")
		}
		rows, err := conn.QueryContext(t.Context(), fmt.Sprintf("SELECT %s FROM `%s`.`%s` ORDER BY id", strings.Join(cols, ","), e.gen.DB, table))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for i, v := range vals {
				if v == nil {
					b.WriteString("NULL")
				} else {
					fmt.Fprintf(&b, "%q", v)
				}
				if i < len(vals)-1 {
					b.WriteString(" | ")
				}
			}
			out = append(out, b.String())
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got, exp := read("pq"), read("pq_copy")
	if len(got) != want || len(exp) != want {
		t.Fatalf("%d rows imported, %d loaded by INSERT, want %d", len(got), len(exp), want)
	}
	bad := 0
	for i := range exp {
		if got[i] != exp[i] {
			if bad++; bad <= 3 {
				t.Errorf("row %d differs:\n storm  %s\n insert %s", i+1, got[i], exp[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d rows differ", bad, want)
	}
}

// Parquet files written by Arrow (every type storm maps, NULLs in each
// column, many row groups, each compression) are imported by three storm
// processes, one of them SIGKILLed while it holds shards; the others take
// its shards over from their checkpoints. Every row is compared with the
// same values loaded by INSERT, and the digests match exactly.
func TestE2EParquet(t *testing.T) {
	e := newEnv(t, gendump.Options{})
	const perFile, files = 6000, 4
	pqDump(t, e, perFile, 500, "")
	// Shards of a few row groups, batches of a few hundred rows: a
	// killed node leaves checkpoints in the middle of its shards.
	cfg := e.config(map[string]string{"import.shard-size": "100000", "import.batch-size": "16384", "node.workers": "2"})
	n1, n2, n3 := e.node("n1", cfg), e.node("n2", cfg), e.node("n3", cfg)
	db := e.db()
	e.waitFor("n2 to hold a shard with committed rows", time.Minute, func() bool {
		for _, id := range e.claimsOf("n2") {
			var rows int64
			err := db.QueryRow("SELECT rows_done FROM storm_meta.checkpoints WHERE job = ? AND shard = ? AND finished = 0", e.job.ID, id).Scan(&rows)
			if err == nil && rows > 0 {
				return true
			}
		}
		return false
	})
	n2.kill()
	n2.wait(t, 10*time.Second)
	for _, p := range []*proc{n1, n3} {
		if code := p.wait(t, 3*time.Minute); code != 0 {
			t.Fatalf("%s exited %d:\n%s", p.id, code, tail(p.log(), 20))
		}
	}
	b := e.barrier()
	if b == nil || b.Status != meta.StatusSucceeded || b.Rows != perFile*files || len(b.Tables) != 1 {
		t.Fatalf("barrier %+v", b)
	}
	if b.Shards <= files {
		t.Errorf("%d shards for %d files: not split by row groups", b.Shards, files)
	}
	r := b.Tables[0]
	if r.Mode != meta.VerifyDigest || !r.OK || r.ExpectedDigest == "" || r.ExpectedDigest != r.ActualDigest || r.Expected != perFile*files {
		t.Errorf("table result %+v", r)
	}
	t.Logf("%d shards, %d rows in %.1fs", b.Shards, b.Rows, b.Seconds)
	if !strings.Contains(n1.log()+n3.log(), "resuming shard from checkpoint") {
		t.Errorf("no shard of the killed node was resumed from its checkpoint")
	}
	pqCopy(t, e, perFile*files)
	comparePQ(t, e, perFile*files)
}

// The verify modes count and off, and rows the target refuses within
// import.max-errors: a column narrower than the file's values takes the
// rows that fit, the others are recorded in storm_meta.rejected by file
// and row number, and nothing else is lost.
func TestE2EParquetModes(t *testing.T) {
	for _, mode := range []string{"count", "off", "digest"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, gendump.Options{})
			const perFile, files = 1000, 4
			// i8 holds -128..127: an UNSIGNED column refuses the
			// negative ones.
			schema := strings.Replace(parquetgen.CreateTable("pq"), "`i8` TINYINT", "`i8` TINYINT UNSIGNED", 1)
			pqDump(t, e, perFile, 300, schema)
			var refused []int64
			for id := int64(1); id <= perFile*files; id++ {
				if v := parquetgen.Row(11, id)[1]; v != nil && v.(int64) < 0 {
					refused = append(refused, id)
				}
			}
			cfg := e.config(map[string]string{"verify.mode": fmt.Sprintf("%q", mode), "import.max-errors": "100000",
				"import.shard-size": "20000"})
			if code := e.node("n1", cfg).wait(t, 2*time.Minute); code != 0 {
				t.Fatalf("exit %d", code)
			}
			b := e.barrier()
			want := int64(perFile*files - len(refused))
			if b == nil || b.Status != meta.StatusSucceeded || b.Rejected != int64(len(refused)) || len(b.Tables) != 1 {
				t.Fatalf("barrier %+v, want %d rejected", b, len(refused))
			}
			if r := b.Tables[0]; r.Mode != mode || (mode != meta.VerifyOff && !r.OK) {
				t.Errorf("table result %+v", r)
			}
			var n int64
			if err := e.db().QueryRow("SELECT COUNT(*) FROM `" + e.gen.DB + "`.pq").Scan(&n); err != nil || n != want {
				t.Fatalf("%d rows in the table, want %d (%v)", n, want, err)
			}
			// Each refused row is recorded with its file and row number:
			// ids count rows across the files in order.
			rows, err := e.db().Query("SELECT file, line FROM storm_meta.rejected WHERE job = ? ORDER BY file, line", e.job.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []int64
			for rows.Next() {
				var file string
				var line int64
				if err := rows.Scan(&file, &line); err != nil {
					t.Fatal(err)
				}
				var k int
				fmt.Sscanf(filepath.Base(file), e.gen.DB+".pq.%05d.parquet", &k)
				got = append(got, int64(k-1)*perFile+line)
			}
			if fmt.Sprint(got) != fmt.Sprint(refused) {
				t.Errorf("rejected rows %v\nwant %v", got, refused)
			}
		})
	}
}

// Parquet files storm can't load fail the plan naming the file and the
// column, before any row is written.
func TestE2EParquetBadInput(t *testing.T) {
	cases := []struct {
		name  string
		write func(t *testing.T, path string) // the broken file
		want  []string
	}{
		{"truncated", func(t *testing.T, path string) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, data[:len(data)*2/3])
		}, []string{"not a readable Parquet file"}},
		{"corrupt footer", func(t *testing.T, path string) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := len(data) - 300; i < len(data)-8; i++ {
				data[i] ^= 0x5a
			}
			writeFile(t, path, data)
		}, []string{"Parquet"}},
		{"a column the table lacks", func(t *testing.T, path string) {
			cols := append(parquetgen.Columns[:3:3], parquetgen.Column{Name: "extra", Arrow: arrow.PrimitiveTypes.Int32})
			if err := parquetgen.WriteColumns(path, parquetgen.Options{FirstID: 1, Rows: 50, RowGroup: 10, Seed: 11}, cols,
				func(c parquetgen.Column, id int64) any { return id }); err != nil {
				t.Fatal(err)
			}
		}, []string{`column "extra" (Parquet type INT32 INT(32,true)) is not in table`}},
		{"a nested column", func(t *testing.T, path string) {
			cols := []parquetgen.Column{parquetgen.Columns[0], {Name: "tags", Arrow: arrow.ListOf(arrow.PrimitiveTypes.Int32)}}
			if err := parquetgen.WriteColumns(path, parquetgen.Options{FirstID: 1, Rows: 50, RowGroup: 10}, cols,
				func(c parquetgen.Column, id int64) any { return id }); err != nil {
				t.Fatal(err)
			}
		}, []string{`column "tags" (Parquet type group LIST)`, "nested"}},
		{"a DECIMAL finer than its column", func(t *testing.T, path string) {
			cols := []parquetgen.Column{parquetgen.Columns[0], {Name: "d9", Arrow: &arrow.Decimal128Type{Precision: 12, Scale: 5}}}
			if err := parquetgen.WriteColumns(path, parquetgen.Options{FirstID: 1, Rows: 50, RowGroup: 10}, cols, nil); err != nil {
				t.Fatal(err)
			}
		}, []string{`column "d9" (Parquet type INT64 DECIMAL(12,5)) has 5 fraction digits`, "keeps 2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, gendump.Options{})
			dir := pqDump(t, e, 200, 50, "")
			bad := filepath.Join(dir, e.gen.DB+".pq.00002.parquet")
			c.write(t, bad)
			if code := e.node("n1", e.config(nil)).wait(t, time.Minute); code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			b := e.barrier()
			if b == nil || b.Status != meta.StatusFailed || b.Rows != 0 {
				t.Fatalf("barrier %+v", b)
			}
			for _, w := range append(c.want, bad) {
				if !strings.Contains(b.Reason, w) {
					t.Errorf("%q not in the reason:\n%s", w, b.Reason)
				}
			}
			var n int
			if err := e.db().QueryRow("SELECT COUNT(*) FROM `" + e.gen.DB + "`.pq").Scan(&n); err != nil || n != 0 {
				t.Errorf("%d rows written (%v): the plan should fail before any", n, err)
			}
		})
	}
}
