package source

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"storm/import/storage"
	"storm/internal/parquetgen"
)

// expectText is the text storm must make of a generated value: worked out
// here from the Go value, not by the reader's code.
func expectText(c parquetgen.Column, v any, loc *time.Location) (string, bool) {
	const ts = "2006-01-02 15:04:05.000000"
	switch x := v.(type) {
	case nil:
		return "", true
	case int64:
		return strconv.FormatInt(x, 10), false
	case uint64:
		return strconv.FormatUint(x, 10), false
	case string:
		return x, false
	case []byte:
		return string(x), false
	case bool:
		if x {
			return "1", false
		}
		return "0", false
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), false
	case time.Duration:
		return parquetgen.FormatTime(x), false
	case time.Time:
		switch c.Kind {
		case parquetgen.Date:
			return x.Format("2006-01-02"), false
		case parquetgen.Instant:
			return x.In(loc).Format(ts), false
		default:
			return x.UTC().Format(ts), false
		}
	}
	panic("no text for " + c.Name)
}

// TestParquetTypes reads files of every type, NULLs in each column, several
// row groups and each compression, written by Arrow, split into chunks of
// row groups, and checks every value of every row.
func TestParquetTypes(t *testing.T) {
	const rows = 1000
	loc := time.FixedZone("+05:30", 5*3600+1800)
	for _, comp := range []string{"snappy", "gzip", "zstd", "none"} {
		t.Run(comp, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "d.t.parquet")
			if err := parquetgen.Write(path, parquetgen.Options{FirstID: 1, Rows: rows, RowGroup: 150, Compression: comp, Seed: 7}); err != nil {
				t.Fatal(err)
			}
			info, err := InspectParquet(path, storage.Version{})
			if err != nil {
				t.Fatal(err)
			}
			if len(info.RowGroups) != 7 || info.Rows != rows {
				t.Fatalf("%d row groups, %d rows", len(info.RowGroups), info.Rows)
			}
			// The file holds what the test means to cover.
			types := map[string]string{}
			for _, c := range info.Columns {
				types[c.Name] = c.Type
			}
			for name, want := range map[string]string{"u8": "INT32 INT(8,false)", "u64": "INT64 INT(64,false)",
				"d9": "INT32 DECIMAL(9,2)", "d18": "INT64 DECIMAL(18,4)", "d30": "FIXED_LEN_BYTE_ARRAY DECIMAL(30,6)",
				"ts_ns": "INT64 TIMESTAMP(isAdjustedToUTC=true,unit=NANOS)", "wall_ms": "INT64 TIMESTAMP(isAdjustedToUTC=false,unit=MILLIS)",
				"t_ms": "INT32 TIME(isAdjustedToUTC=false,unit=MILLIS)", "t_ns": "INT64 TIME(isAdjustedToUTC=false,unit=NANOS)",
				"dt": "INT32 DATE", "b": "BYTE_ARRAY", "s": "BYTE_ARRAY STRING", "flag": "BOOLEAN"} {
				if types[name] != want {
					t.Errorf("column %s is %s, want %s", name, types[name], want)
				}
			}
			st, _ := os.Stat(path)
			chunks, err := Split(DataFile{Path: path, Size: st.Size(), Format: FormatParquet}, st.Size()/3, DefaultCSV())
			if err != nil {
				t.Fatal(err)
			}
			if len(chunks) < 2 {
				t.Fatalf("%d chunks: not split by row groups", len(chunks))
			}
			var next int64
			for _, ch := range chunks {
				if ch.Start != next || ch.End <= ch.Start || ch.DataBytes <= 0 {
					t.Fatalf("chunk %+v after row %d", ch, next)
				}
				next = ch.End
				ch.TimeZone = "+05:30"
				r, err := OpenChunk(ch, DefaultCSV(), 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(r.Columns(), ","); got != columnNames() {
					t.Fatalf("columns %s", got)
				}
				for i := ch.Start; ; i++ {
					row, err := r.Next()
					if err == io.EOF {
						if i != ch.End {
							t.Fatalf("chunk %+v ended at row %d", ch, i)
						}
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if row.Line != i+1 || row.End != i+1 || row.NextLine != i+2 {
						t.Fatalf("row %d: line %d end %d next line %d", i, row.Line, row.End, row.NextLine)
					}
					checkRow(t, parquetgen.Row(7, i+1), row, loc)
				}
				r.Close()
			}
			if next != rows {
				t.Errorf("chunks end at row %d of %d", next, rows)
			}
		})
	}
}

func columnNames() string {
	var names []string
	for _, c := range parquetgen.Columns {
		names = append(names, c.Name)
	}
	return strings.Join(names, ",")
}

func checkRow(t *testing.T, want []any, row Row, loc *time.Location) {
	t.Helper()
	if len(row.Values) != len(want) {
		t.Fatalf("row %d: %d values, want %d", row.Line, len(row.Values), len(want))
	}
	for k, c := range parquetgen.Columns {
		text, null := expectText(c, want[k], loc)
		got := row.Values[k]
		if got.Null != null || (!null && string(got.Data) != text) {
			t.Fatalf("row %d column %s: got %q (null %v), want %q (null %v)", row.Line, c.Name, got.Data, got.Null, text, null)
		}
	}
}

// TestParquetResume: a reader resumed at a row in the middle of a row group
// (a checkpoint's row) starts there.
func TestParquetResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.t.parquet")
	if err := parquetgen.Write(path, parquetgen.Options{FirstID: 1, Rows: 500, RowGroup: 100, Compression: "zstd", Seed: 3}); err != nil {
		t.Fatal(err)
	}
	chunks, err := Split(DataFile{Path: path, Format: FormatParquet}, 1, DefaultCSV())
	if err != nil || len(chunks) != 5 {
		t.Fatalf("chunks %+v, %v", chunks, err)
	}
	ch := chunks[2] // rows 200..299
	for _, resume := range []int64{0, 200, 201, 250, 299, 300} {
		r, err := OpenChunk(ch, DefaultCSV(), resume, resume+1)
		if err != nil {
			t.Fatal(err)
		}
		first := max(resume, ch.Start)
		n := int64(0)
		for {
			row, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if row.Line != first+n+1 {
				t.Fatalf("resumed at %d: row %d is line %d", resume, n, row.Line)
			}
			checkRow(t, parquetgen.Row(3, first+n+1), row, time.UTC)
			n++
		}
		r.Close()
		if n != ch.End-first {
			t.Errorf("resumed at %d: %d rows, want %d", resume, n, ch.End-first)
		}
	}
}

// TestParquetBadInput: files storm can't load fail naming the file, and the
// column and its Parquet type where one is at fault.
func TestParquetBadInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.parquet")
	if err := parquetgen.Write(good, parquetgen.Options{FirstID: 1, Rows: 300, RowGroup: 100, Compression: "snappy", Seed: 1}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	footer := append([]byte(nil), data...)
	// The footer's length field, just before the closing magic, points
	// into the middle of the data.
	footer[len(footer)-8], footer[len(footer)-7] = 0x13, 0x00
	corrupt := append([]byte(nil), data...)
	for i := len(corrupt) - 400; i < len(corrupt)-8; i++ {
		corrupt[i] ^= 0x5a
	}
	nested := filepath.Join(dir, "nested.parquet")
	cols := []parquetgen.Column{parquetgen.Columns[0], {Name: "tags", Arrow: arrow.ListOf(arrow.PrimitiveTypes.Int32)}}
	if err := parquetgen.WriteColumns(nested, parquetgen.Options{FirstID: 1, Rows: 10, RowGroup: 10}, cols, func(c parquetgen.Column, id int64) any { return id }); err != nil {
		t.Fatal(err)
	}
	f16 := filepath.Join(dir, "f16.parquet")
	cols = []parquetgen.Column{parquetgen.Columns[0], {Name: "half", Arrow: arrow.FixedWidthTypes.Float16}}
	if err := parquetgen.WriteColumns(f16, parquetgen.Options{FirstID: 1, Rows: 10, RowGroup: 10}, cols, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want []string
	}{
		{"truncated", write("truncated.parquet", data[:len(data)/2]), []string{"truncated.parquet", "not a readable Parquet file"}},
		{"footer length", write("footer.parquet", footer), []string{"footer.parquet", "not a readable Parquet file"}},
		{"corrupt footer", write("corrupt.parquet", corrupt), []string{"corrupt.parquet"}},
		{"empty", write("empty.parquet", nil), []string{"empty.parquet", "not a readable Parquet file"}},
		{"nested", nested, []string{"nested.parquet", `column "tags"`, "group", "nested"}},
		{"unsupported", f16, []string{"f16.parquet", `column "half"`, "FLOAT16", "does not load"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Split(DataFile{Path: tc.path, Format: FormatParquet}, 1<<20, DefaultCSV())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	// Pages cut short behind a good footer: the read fails naming the
	// file and the row, with nothing returned for the broken rows.
	pages := append([]byte(nil), data...)
	for i := 4; i < len(pages)/2; i++ {
		pages[i] = 0xff
	}
	p := write("pages.parquet", pages)
	r, err := OpenChunk(Chunk{Path: p, Format: FormatParquet, Start: 0, End: -1}, DefaultCSV(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		_, err = r.Next()
		if err != nil {
			break
		}
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.File != p || !strings.Contains(pe.Reason, "Parquet") {
		t.Errorf("error %v: want a ParseError naming %s", err, p)
	}
}

// TestParquetInt96: legacy INT96 timestamps (Impala, Hive, Spark) are
// instants, written in the target's time zone.
func TestParquetInt96(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.t.parquet")
	var cols []parquetgen.Column
	for _, c := range parquetgen.Columns {
		// Arrow writes nanosecond timestamps as INT96 when told to.
		if c.Name == "ts_ns" || c.Name == "wall_ns" || c.Name == "id" {
			cols = append(cols, c)
		}
	}
	o := parquetgen.Options{FirstID: 1, Rows: 300, RowGroup: 100, Compression: "snappy", Seed: 5, Int96: true}
	if err := parquetgen.WriteColumns(path, o, cols, nil); err != nil {
		t.Fatal(err)
	}
	info, err := InspectParquet(path, storage.Version{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range info.Columns[1:] {
		if c.Type != "INT96" {
			t.Fatalf("column %s is %s, want INT96", c.Name, c.Type)
		}
	}
	loc := time.FixedZone("-03:00", -3*3600)
	r, err := OpenChunk(Chunk{Path: path, Format: FormatParquet, Start: 0, End: -1, TimeZone: "-03:00"}, DefaultCSV(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	index := map[string]int{}
	for i, c := range parquetgen.Columns {
		index[c.Name] = i
	}
	for id := int64(1); id <= 300; id++ {
		row, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		all := parquetgen.Row(5, id)
		for k, c := range cols {
			if c.Kind == parquetgen.Wall {
				c.Kind = parquetgen.Instant // INT96 holds no such flag: an instant
			}
			text, null := expectText(c, all[index[c.Name]], loc)
			if got := row.Values[k]; got.Null != null || string(got.Data) != text {
				t.Fatalf("row %d column %s: %q (null %v), want %q", id, c.Name, got.Data, got.Null, text)
			}
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last row: %v", err)
	}
}

// TestParquetTimeZone: a target time zone storm can't place fails only a
// file that holds instants, naming the column.
func TestParquetTimeZone(t *testing.T) {
	dir := t.TempDir()
	instants := filepath.Join(dir, "instants.parquet")
	walls := filepath.Join(dir, "walls.parquet")
	o := parquetgen.Options{FirstID: 1, Rows: 10, RowGroup: 10}
	if err := parquetgen.WriteColumns(instants, o, []parquetgen.Column{parquetgen.Columns[0], parquetgen.Columns[13]}, nil); err != nil {
		t.Fatal(err)
	}
	if err := parquetgen.WriteColumns(walls, o, []parquetgen.Column{parquetgen.Columns[0], parquetgen.Columns[16]}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := OpenChunk(Chunk{Path: instants, Format: FormatParquet, End: -1, TimeZone: "SYSTEM"}, DefaultCSV(), 0, 0)
	if err == nil || !strings.Contains(err.Error(), `column "ts_ms"`) || !strings.Contains(err.Error(), "SYSTEM") {
		t.Errorf("instants under SYSTEM: %v", err)
	}
	r, err := OpenChunk(Chunk{Path: walls, Format: FormatParquet, End: -1, TimeZone: "SYSTEM"}, DefaultCSV(), 0, 0)
	if err != nil {
		t.Fatalf("wall clocks under SYSTEM: %v", err)
	}
	r.Close()
	for _, tz := range []string{"+00:00", "-03:30", "UTC", ""} {
		r, err := OpenChunk(Chunk{Path: instants, Format: FormatParquet, End: -1, TimeZone: tz}, DefaultCSV(), 0, 0)
		if err != nil {
			t.Errorf("zone %q: %v", tz, err)
			continue
		}
		r.Close()
	}
}
