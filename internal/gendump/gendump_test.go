package gendump

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"storm/import/source"
)

// readDir returns the contents of every file in dir by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func TestDeterministic(t *testing.T) {
	for _, format := range []string{"csv", "sql", "mixed"} {
		t.Run(format, func(t *testing.T) {
			o := Options{Rows: 3000, Seed: 42, Format: format, FilesPerTable: 3, Header: true}
			gen := func(seed int64) map[string][]byte {
				o := o
				o.Seed = seed
				o.Dir = t.TempDir()
				if _, err := Generate(o); err != nil {
					t.Fatal(err)
				}
				return readDir(t, o.Dir)
			}
			a, b, c := gen(42), gen(42), gen(43)
			if len(a) != 1+4+4*3 {
				t.Fatalf("%d files, want 17: %v", len(a), slices.Sorted(maps.Keys(a)))
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatal("two runs with the same options differ")
			}
			for name, data := range a {
				isData := !strings.HasSuffix(name, "-schema.sql") && !strings.HasSuffix(name, "-schema-create.sql")
				if same := bytes.Equal(data, c[name]); isData == same {
					t.Errorf("%s: same content with another seed: %v", name, same)
				}
			}
		})
	}
}

// expected collects ExpectedRows, copying the reused slice.
func expected(t *testing.T, o Options, table string) [][]*string {
	t.Helper()
	var rows [][]*string
	err := ExpectedRows(o, table, func(v []*string) error {
		rows = append(rows, slices.Clone(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func show(p *string) string {
	if p == nil {
		return "NULL"
	}
	return strconv.Quote(*p)
}

func showValue(v source.Value) string {
	if v.Null {
		return "NULL"
	}
	return strconv.Quote(string(v.Data))
}

// Every file read back through the importer's own readers gives exactly the
// expected rows, in order.
func TestRoundTrip(t *testing.T) {
	cases := []struct {
		format string
		header bool
		files  int
		tables []string
	}{
		{"csv", true, 1, nil},
		{"csv", false, 1, nil},
		{"csv", true, 3, nil},
		{"csv", false, 3, nil},
		{"sql", false, 1, nil},
		{"sql", true, 3, nil},
		{"mixed", true, 1, nil},
		{"mixed", false, 1, nil},
		{"mixed", true, 3, nil},
		{"mixed", false, 3, nil},
		{"", true, 2, []string{"events", "customers"}},
	}
	for i, c := range cases {
		name := fmt.Sprintf("%s/header=%v/files=%d/tables=%v", c.format, c.header, c.files, c.tables)
		t.Run(name, func(t *testing.T) {
			o := Options{Dir: t.TempDir(), DB: "rt", Rows: 4000 + i, Seed: int64(i), Format: c.format,
				FilesPerTable: c.files, Header: c.header, Tables: c.tables}
			st, err := Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			if st.Rows != int64(o.Rows) {
				t.Fatalf("Stats.Rows %d, want %d", st.Rows, o.Rows)
			}
			l, err := source.Discover(o.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Skipped) != 0 || len(l.Databases) != 1 || l.Databases[0].Name != "rt" || l.Databases[0].SchemaFile == "" {
				t.Fatalf("layout: databases %+v, skipped %v", l.Databases, l.Skipped)
			}
			infos := Tables(o)
			var names []string
			for _, ti := range infos {
				names = append(names, ti.Name)
			}
			slices.Sort(names)
			if len(l.Tables) != len(names) {
				t.Fatalf("discovered %d tables, want %v", len(l.Tables), names)
			}
			csvCfg := source.DefaultCSV()
			csvCfg.Header = o.Header
			var total, files int64
			var bytesTotal int64
			for ti, tab := range l.Tables {
				if tab.DB != "rt" || tab.Name != names[ti] || tab.SchemaFile == "" {
					t.Fatalf("table %+v, want rt.%s with a schema file", tab, names[ti])
				}
				create, err := source.ReadSchema(tab.SchemaFile)
				if err != nil || !strings.HasPrefix(create, "CREATE TABLE `"+tab.Name+"` (") {
					t.Fatalf("schema %s: %q, %v", tab.SchemaFile, create, err)
				}
				info := infos[slices.IndexFunc(infos, func(x TableInfo) bool { return x.Name == tab.Name })]
				want := expected(t, o, tab.Name)
				if len(tab.Files) != min(o.FilesPerTable, len(want)) {
					t.Fatalf("%s: %d data files, want %d", tab.Name, len(tab.Files), min(o.FilesPerTable, len(want)))
				}
				var got int
				var csvFiles, crlfFiles, rawBreaks, csvRows int
				for _, f := range tab.Files {
					files++
					bytesTotal += f.Size
					data, err := os.ReadFile(f.Path)
					if err != nil {
						t.Fatal(err)
					}
					r, err := source.OpenChunk(source.Chunk{Path: f.Path, Format: f.Format, Start: 0, End: -1, StartLine: 1}, csvCfg, 0, 1)
					if err != nil {
						t.Fatal(err)
					}
					crlf := true
					for {
						row, err := r.Next()
						if errors.Is(err, io.EOF) {
							break
						}
						if err != nil {
							t.Fatalf("%s: %v", f.Path, err)
						}
						if cols := r.Columns(); (f.Format == source.FormatSQL || o.Header) != (cols != nil) ||
							cols != nil && !slices.Equal(cols, info.Columns) {
							t.Fatalf("%s: columns %q, want %q", f.Path, cols, info.Columns)
						}
						if got >= len(want) {
							t.Fatalf("%s:%d: more rows than the %d expected", f.Path, row.Line, len(want))
						}
						w := want[got]
						if len(row.Values) != len(w) {
							t.Fatalf("%s:%d: %d values, want %d", f.Path, row.Line, len(row.Values), len(w))
						}
						for c, v := range row.Values {
							if v.Null != (w[c] == nil) || w[c] != nil && string(v.Data) != *w[c] {
								t.Fatalf("%s:%d: column %s is %s, want %s", f.Path, row.Line, info.Columns[c], showValue(v), show(w[c]))
							}
						}
						if f.Format == source.FormatCSV {
							csvRows++
							if row.NextLine-row.Line > 1 {
								rawBreaks++
							}
							crlf = crlf && bytes.HasSuffix(data[:row.End], []byte("\r\n"))
						}
						got++
					}
					r.Close()
					if f.Format == source.FormatCSV {
						csvFiles++
						if crlf {
							crlfFiles++
						}
					}
				}
				if got != len(want) {
					t.Fatalf("%s: read %d rows, want %d", tab.Name, got, len(want))
				}
				total += int64(got)
				if wantCRLF := min(1, csvFiles/2); crlfFiles != wantCRLF {
					t.Errorf("%s: %d of %d CSV files end lines with CRLF, want %d", tab.Name, crlfFiles, csvFiles, wantCRLF)
				}
				// Events in CSV must hold both quoted raw line breaks and
				// escaped ones; no other table has line breaks at all.
				if tab.Name == "events" && csvRows > 0 && (rawBreaks == 0 || rawBreaks == csvRows) {
					t.Errorf("events: %d of %d CSV rows span lines", rawBreaks, csvRows)
				}
				if tab.Name != "events" && rawBreaks != 0 {
					t.Errorf("%s: %d rows span lines", tab.Name, rawBreaks)
				}
			}
			if total != int64(o.Rows) || total != st.Rows || files != int64(st.Files) || bytesTotal != st.Bytes {
				t.Fatalf("read %d rows in %d files of %d bytes; Stats %+v, Rows %d", total, files, bytesTotal, st, o.Rows)
			}
		})
	}
}

// Line 4 of the first customers CSV file (with a header) is the third row,
// starting with its bare id: tests edit dumps by line.
func TestCustomersLineFour(t *testing.T) {
	o := Options{Dir: t.TempDir(), Rows: 3000, Seed: 1, Format: "csv", FilesPerTable: 2, Header: true, Tables: []string{"customers"}}
	if _, err := Generate(o); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(o.Dir, "storm_demo.customers.00000.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	third := expected(t, o, "customers")[2]
	if len(lines) < 4 || !strings.HasPrefix(lines[3], *third[0]+",") || *third[0] != "3" {
		t.Fatalf("line 4 is %q; third row's id %s", lines[3], show(third[0]))
	}
	if strings.Count(string(data), "\n") != 1+3000/2 {
		t.Fatalf("%d lines, want a header and %d rows", strings.Count(string(data), "\n"), 3000/2)
	}
}

func TestTables(t *testing.T) {
	all := Tables(Options{})
	var names []string
	for _, ti := range all {
		names = append(names, ti.Name)
	}
	if !slices.Equal(names, []string{"customers", "orders", "events", "wide"}) {
		t.Fatalf("tables %v", names)
	}
	if all[0].Columns[0] != "id" || !slices.Equal(all[0].PK, []string{"id"}) || all[2].PK != nil || len(all[3].Columns) < 20 {
		t.Fatalf("table infos %+v", all)
	}
	sub := Tables(Options{Tables: []string{"wide", "customers", "nope"}})
	if len(sub) != 2 || sub[0].Name != "customers" || sub[1].Name != "wide" {
		t.Fatalf("subset %+v", sub)
	}

	tests := []struct {
		name string
		err  func() error
		want string
	}{
		{"generate unknown table", func() error {
			_, err := Generate(Options{Dir: t.TempDir(), Rows: 10, Tables: []string{"customers", "nope"}})
			return err
		}, `unknown table "nope"`},
		{"expected unknown table", func() error {
			return ExpectedRows(Options{Rows: 10}, "nope", func([]*string) error { return nil })
		}, `unknown table "nope"`},
		{"expected unselected table", func() error {
			return ExpectedRows(Options{Rows: 10, Tables: []string{"wide"}}, "orders", func([]*string) error { return nil })
		}, `not among the selected`},
		{"unknown format", func() error {
			_, err := Generate(Options{Dir: t.TempDir(), Rows: 10, Format: "xml"})
			return err
		}, `unknown format "xml"`},
		{"dotted database", func() error {
			_, err := Generate(Options{Dir: t.TempDir(), Rows: 10, DB: "a.b"})
			return err
		}, `database name "a.b"`},
		{"callback error", func() error {
			return ExpectedRows(Options{Rows: 10}, "orders", func([]*string) error { return io.ErrShortWrite })
		}, io.ErrShortWrite.Error()},
		{"no dir", func() error {
			_, err := Generate(Options{Rows: 10})
			return err
		}, "no output directory"},
		{"unwritable dir", func() error {
			f := filepath.Join(t.TempDir(), "file")
			os.WriteFile(f, nil, 0o644)
			_, err := Generate(Options{Dir: filepath.Join(f, "sub"), Rows: 10})
			return err
		}, "file/sub"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestRowCounts(t *testing.T) {
	for _, sel := range [][]string{nil, {"customers"}, {"orders", "wide"}, {"events", "wide", "customers"}} {
		tables, err := selectTables(sel)
		if err != nil {
			t.Fatal(err)
		}
		for _, rows := range []int{0, 1, 2, 3, 4, 5, 7, 10, 99, 1000, 12345, 1_000_001} {
			counts := rowCounts(rows, tables)
			var sum int64
			for i, c := range counts {
				sum += c
				if c < 0 || rows >= len(tables) && c < 1 {
					t.Errorf("tables %v, rows %d: %s gets %d", sel, rows, tables[i].name, c)
				}
			}
			if sum != int64(rows) {
				t.Errorf("tables %v, rows %d: counts %v sum to %d", sel, rows, counts, sum)
			}
		}
	}
	if got := rowCounts(1000, allTables); !slices.Equal(got, []int64{200, 400, 250, 150}) {
		t.Errorf("weights: %v", got)
	}
}

func TestCivil(t *testing.T) {
	for _, days := range []int64{dayMin, dayMin + 1, -1, 0, 1, 59, 60, 365, 10957, 11016, 11017, dayMax - 1, dayMax} {
		want := time.Unix(days*86400, 0).UTC().Format("2006-01-02")
		if got := string(appendDate(nil, days)); got != want {
			t.Errorf("day %d: %s, want %s", days, got, want)
		}
		y, m, d := civil(days)
		if back := daysFrom(y, m, d); back != days {
			t.Errorf("daysFrom(civil(%d)) = %d", days, back)
		}
	}
	for secs := secsMin; secs < secsMax; secs += 7777777 {
		want := time.Unix(secs, 0).UTC().Format("2006-01-02 15:04:05.000000")
		if got := string(appendDateTime(nil, secs, 0, true)); got != want {
			t.Fatalf("secs %d: %s, want %s", secs, got, want)
		}
	}
}

// Every generated value is valid for its column and in the form MariaDB
// prints, checked against the column definitions.
func TestValuesFitColumns(t *testing.T) {
	o := Options{Rows: 40000, Seed: 99}
	for _, tab := range allTables {
		checks := make([]func(string) error, len(tab.cols))
		for i, c := range tab.cols {
			checks[i] = columnCheck(t, c.def)
		}
		seen := map[string]map[string]bool{}
		for _, c := range tab.cols {
			seen[c.name] = map[string]bool{}
		}
		err := ExpectedRows(o, tab.name, func(vals []*string) error {
			for i, v := range vals {
				c := tab.cols[i]
				if v == nil {
					seen[c.name]["<NULL>"] = true
					if strings.Contains(c.def, "NOT NULL") {
						return fmt.Errorf("%s.%s: NULL in a NOT NULL column", tab.name, c.name)
					}
					continue
				}
				if err := checks[i](*v); err != nil {
					return fmt.Errorf("%s.%s: %q: %w", tab.name, c.name, *v, err)
				}
				if len(seen[c.name]) < 50000 {
					seen[c.name][*v] = true
				}
				if tab.name == "customers" && strings.ContainsAny(*v, "\r\n") {
					return fmt.Errorf("customers.%s: line break in %q", c.name, *v)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range tab.cols {
			if !strings.Contains(c.def, "NOT NULL") && !seen[c.name]["<NULL>"] {
				t.Errorf("%s.%s: never NULL", tab.name, c.name)
			}
			if len(seen[c.name]) < 2 {
				t.Errorf("%s.%s: a single value %v", tab.name, c.name, seen[c.name])
			}
		}
		switch tab.name {
		case "orders":
			for _, v := range []string{"0.0000", "9999999999.9999", "-9999999999.9999", "-128", "127", "9999-12-31 23:59:59.999999"} {
				if !seen["amount"][v] && !seen["status"][v] && !seen["updated_at"][v] {
					t.Errorf("orders: %q never generated", v)
				}
			}
		case "wide":
			for col, v := range map[string]string{"t_ubig": "18446744073709551615", "t_big": "-9223372036854775808",
				"t_uint": "4294967295", "t_time": "-838:59:59", "t_set": "", "t_dt": "1000-01-01 00:00:00", "t_date": "9999-12-31"} {
				if !seen[col][v] {
					t.Errorf("wide.%s: %q never generated", col, v)
				}
			}
		case "events":
			for _, v := range []string{"NULL", `\N`, ""} {
				if !seen["payload"][v] {
					t.Errorf("events.payload: %q never generated", v)
				}
			}
			for _, sub := range []string{"\n", "\r\n", "\t", `"`, `'`, ",", `\`} {
				if !anyContains(seen["payload"], sub) {
					t.Errorf("events.payload: nothing contains %q", sub)
				}
			}
			for _, b := range []string{"\x00", "\x5c", "\x22", "\x27", "\x0a", "\x0d", "\xff", "\x1a"} {
				if !anyContains(seen["raw"], b) || !anyContains(seen["body"], b) {
					t.Errorf("events: no binary value contains %q", b)
				}
			}
		}
	}
}

func anyContains(set map[string]bool, sub string) bool {
	for v := range set {
		if strings.Contains(v, sub) {
			return true
		}
	}
	return false
}

var (
	reInt     = regexp.MustCompile(`^(tiny|small|medium|big)?int\(\d+\)( unsigned)?`)
	reDecimal = regexp.MustCompile(`^decimal\((\d+),(\d+)\)`)
	reString  = regexp.MustCompile(`^(char|varchar|varbinary|binary)\((\d+)\)`)
	reList    = regexp.MustCompile(`^(enum|set)\((.*)\) `)
)

// columnCheck returns a validator for the values of a column definition.
func columnCheck(t *testing.T, def string) func(string) error {
	t.Helper()
	if m := reInt.FindStringSubmatch(def); m != nil {
		bits := map[string]uint{"tiny": 8, "small": 16, "medium": 24, "": 32, "big": 64}[m[1]]
		lo, hi := new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), bits-1)), new(big.Int).Lsh(big.NewInt(1), bits-1)
		if m[2] != "" {
			lo, hi = big.NewInt(0), new(big.Int).Lsh(big.NewInt(1), bits)
		}
		hi.Sub(hi, big.NewInt(1))
		if strings.HasPrefix(def, "tinyint(1)") {
			lo, hi = big.NewInt(0), big.NewInt(1) // a BOOLEAN holds 0 or 1 by convention
		}
		return func(v string) error {
			n, ok := new(big.Int).SetString(v, 10)
			if !ok || n.String() != v || n.Cmp(lo) < 0 || n.Cmp(hi) > 0 {
				return fmt.Errorf("not an integer in [%s, %s]", lo, hi)
			}
			return nil
		}
	}
	if m := reDecimal.FindStringSubmatch(def); m != nil {
		p, _ := strconv.Atoi(m[1])
		s, _ := strconv.Atoi(m[2])
		re := regexp.MustCompile(fmt.Sprintf(`^-?(0|[1-9][0-9]{0,%d})\.[0-9]{%d}$`, p-s-1, s))
		return func(v string) error {
			if !re.MatchString(v) || strings.Trim(v, "-0.") == "" && v[0] == '-' {
				return fmt.Errorf("not in the DECIMAL(%d,%d) form", p, s)
			}
			return nil
		}
	}
	if m := reString.FindStringSubmatch(def); m != nil {
		n, _ := strconv.Atoi(m[2])
		return func(v string) error {
			switch m[1] {
			case "binary":
				if len(v) != n {
					return fmt.Errorf("%d bytes in BINARY(%d)", len(v), n)
				}
			case "varbinary":
				if len(v) > n {
					return fmt.Errorf("%d bytes in VARBINARY(%d)", len(v), n)
				}
			default:
				if !utf8.ValidString(v) || utf8.RuneCountInString(v) > n {
					return fmt.Errorf("not valid UTF-8 of at most %d characters", n)
				}
				if m[1] == "char" && strings.HasSuffix(v, " ") {
					return errors.New("CHAR with a trailing space, which MariaDB strips")
				}
			}
			return nil
		}
	}
	if m := reList.FindStringSubmatch(def); m != nil {
		members := strings.Split(strings.ReplaceAll(m[2], "'", ""), ",")
		return func(v string) error {
			if m[1] == "enum" {
				if !slices.Contains(members, v) {
					return errors.New("not an ENUM member")
				}
				return nil
			}
			if v == "" {
				return nil
			}
			last := -1
			for _, p := range strings.Split(v, ",") {
				i := slices.Index(members, p)
				if i <= last {
					return errors.New("not SET members in definition order")
				}
				last = i
			}
			return nil
		}
	}
	layout := func(l string) func(string) error {
		return func(v string) error {
			if tm, err := time.Parse(l, v); err != nil || tm.Format(l) != v {
				return fmt.Errorf("not in the form %s: %v", l, err)
			}
			return nil
		}
	}
	reTime := regexp.MustCompile(`^-?([0-9]{2,3}):[0-5][0-9]:[0-5][0-9]$`)
	switch w, _, _ := strings.Cut(def, " "); w {
	case "date":
		return layout("2006-01-02")
	case "datetime":
		return layout("2006-01-02 15:04:05")
	case "datetime(6)":
		return layout("2006-01-02 15:04:05.000000")
	case "time":
		return func(v string) error {
			m := reTime.FindStringSubmatch(v)
			if m == nil || v == "-00:00:00" {
				return errors.New("not a TIME")
			}
			if h, _ := strconv.Atoi(m[1]); h > 838 || len(m[1]) == 3 && m[1][0] == '0' {
				return errors.New("TIME hours out of range or zero-padded to 3 digits")
			}
			return nil
		}
	case "year(4)":
		return func(v string) error {
			if y, err := strconv.Atoi(v); err != nil || len(v) != 4 || y < 1901 || y > 2155 {
				return errors.New("not a YEAR")
			}
			return nil
		}
	case "text", "blob":
		return func(v string) error {
			if len(v) > 65535 || w == "text" && !utf8.ValidString(v) {
				return errors.New("too long or not UTF-8")
			}
			return nil
		}
	}
	t.Fatalf("no check for column type %q", def)
	return nil
}

// BenchmarkGenerate reports the throughput of a mixed dump.
func BenchmarkGenerate(b *testing.B) {
	o := Options{Dir: b.TempDir(), Rows: 200_000, Format: "mixed", FilesPerTable: 4, Header: true}
	var st Stats
	for b.Loop() {
		var err error
		if st, err = Generate(o); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(st.Bytes)
}
