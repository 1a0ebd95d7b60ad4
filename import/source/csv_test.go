package source

import (
	"reflect"
	"testing"
)

func noHeader() CSVConfig {
	c := DefaultCSV()
	c.Header = false
	return c
}

func TestCSVRead(t *testing.T) { smallBuffers(t, cSVRead) }

func cSVRead(t *testing.T) {
	noEscape := noHeader()
	noEscape.BackslashEscape = false
	noQuote := noHeader()
	noQuote.Delimiter = ""
	multi := noHeader()
	multi.Separator, multi.Terminator, multi.Delimiter = "||", "|\n", "'"
	semi := noHeader()
	semi.Terminator = ";"
	emptyNull := noHeader()
	emptyNull.Null = ""
	tests := []struct {
		name  string
		cfg   CSVConfig
		in    string
		want  [][]string
		cols  []string
		lines []int64
	}{
		{"simple", noHeader(), "1,a\n2,b\n", [][]string{{"1", "a"}, {"2", "b"}}, nil, []int64{1, 2}},
		{"no final newline", noHeader(), "1,a\n2,b", [][]string{{"1", "a"}, {"2", "b"}}, nil, nil},
		{"crlf", noHeader(), "1,a\r\n2,b\r\n", [][]string{{"1", "a"}, {"2", "b"}}, nil, nil},
		{"lone cr is data", noHeader(), "1,a\rb\n", [][]string{{"1", "a\rb"}}, nil, nil},
		{"blank lines", noHeader(), "1\n\n2\r\n\r\n\n", [][]string{{"1"}, {"2"}}, nil, []int64{1, 3}},
		{"empty file", noHeader(), "", nil, nil, nil},
		{"quotes", noHeader(), `"a,b","c""d",""` + "\n", [][]string{{"a,b", `c"d`, ""}}, nil, nil},
		{"quoted newline", noHeader(), "\"a\nb\r\nc\",x\n2,y\n", [][]string{{"a\nb\r\nc", "x"}, {"2", "y"}}, nil, []int64{1, 4}},
		{"null vs quoted null vs empty", noHeader(), `\N,"\N",,""` + "\n", [][]string{{N, "N", "", ""}}, nil, nil},
		{"null needs the whole field", noHeader(), `\Nx,x\N,\\N` + "\n", [][]string{{"Nx", "xN", `\N`}}, nil, nil},
		{"escapes", noHeader(), `a\,b,\n\t\r\0\Z\\\"\q` + "\n", [][]string{{"a,b", "\n\t\r\x00\x1a\\\"q"}}, nil, nil},
		{"escapes in quotes", noHeader(), `"a\"b\\",c` + "\n", [][]string{{`a"b\`, "c"}}, nil, nil},
		{"escaped newline", noHeader(), "a\\\nb,c\nd\n", [][]string{{"a\nb", "c"}, {"d"}}, nil, []int64{1, 3}},
		{"no escape", noEscape, `a\,b,\N,"x\"` + "\n", [][]string{{`a\`, "b", N, `x\`}}, nil, nil},
		{"no quoting", noQuote, `"a",b"` + "\n", [][]string{{`"a"`, `b"`}}, nil, nil},
		{"quote inside unquoted field", noHeader(), `ab"c,d` + "\n", [][]string{{`ab"c`, "d"}}, nil, nil},
		{"trailing separator", noHeader(), "a,\nb,", [][]string{{"a", ""}, {"b", ""}}, nil, nil},
		{"multi-byte tokens", multi, "1||'a||b|\n'''||x|\n2||y", [][]string{{"1", "a||b|\n'", "x"}, {"2", "y"}}, nil, []int64{1, 3}},
		{"partial separator", multi, "a|b||c|\n", [][]string{{"a|b", "c"}}, nil, nil},
		{"custom terminator", semi, "1,a;2,\nb;", [][]string{{"1", "a"}, {"2", "\nb"}}, nil, []int64{1, 1}},
		{"empty null", emptyNull, `,"",\N` + "\n", [][]string{{N, "", "N"}}, nil, nil},
		{"header", DefaultCSV(), "id,\"na,me\"\n1,a\n", [][]string{{"1", "a"}}, []string{"id", "na,me"}, []int64{2}},
		{"header only", DefaultCSV(), "id,name\n", nil, []string{"id", "name"}, nil},
		{"header only no newline", DefaultCSV(), "id,name", nil, []string{"id", "name"}, nil},
		{"header empty file", DefaultCSV(), "", nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "d.t.csv", []byte(tc.in))
			rows, cols := mustRead(t, wholeChunk(p, FormatCSV), tc.cfg)
			checkVals(t, rows, tc.want)
			if !reflect.DeepEqual(cols, tc.cols) {
				t.Errorf("columns %q, want %q", cols, tc.cols)
			}
			if tc.lines != nil {
				var got []int64
				for _, r := range rows {
					got = append(got, r.Line)
				}
				if !reflect.DeepEqual(got, tc.lines) {
					t.Errorf("lines %v, want %v", got, tc.lines)
				}
			}
			checkEnds(t, rows, int64(len(tc.in)))
		})
	}
}

// checkEnds checks that End and NextLine move forward and the last row ends
// within the file.
func checkEnds(t *testing.T, rows []gotRow, size int64) {
	t.Helper()
	var end int64
	line := int64(1)
	for i, r := range rows {
		if r.End <= end || r.End > size || r.Line < line || r.Nxt < r.Line {
			t.Fatalf("row %d: line %d end %d next %d after end %d line %d (size %d)", i, r.Line, r.End, r.Nxt, end, line, size)
		}
		end, line = r.End, r.Nxt
	}
}

func TestCSVErrors(t *testing.T) { smallBuffers(t, cSVErrors) }

func cSVErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int64
		reason   string
		rowsOK   int
	}{
		{"unclosed quote", "1,a\n2,\"b\nc\n", 2, "unclosed", 1},
		{"unclosed after escape", "\"ab\\", 1, "unclosed", 0},
		{"garbage after quote", "1,a\n\"ab\"c,d\n", 2, "after the closing quote", 1},
		// The record begins on line 1: the error names it, and where the
		// problem is.
		{"garbage on a later line", "\"a\nb\" x\n", 1, "after the closing quote of a field at line 2", 0},
		// An unclosed quote is found at the end of the input: the error
		// names the line the record began on and the one the parser
		// stopped on.
		{"unclosed quote, lines after it", "1,a\n2,\"b\n3,c\n4,d\n", 2, "unclosed quoted field (it begins on line 2; the parser stopped on line 5", 1},
		{"unclosed quote in a later field", "1,a\n2,\"b\nc\",\"d\ne\n", 2, "unclosed quoted field at line 3 (it begins on line 2; the parser stopped on line 5", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "d.t.csv", []byte(tc.in))
			rows, _, err := readChunk(t, wholeChunk(p, FormatCSV), noHeader(), 0, 0)
			checkParseError(t, err, tc.line, tc.reason)
			if len(rows) != tc.rowsOK {
				t.Errorf("%d rows before the error, want %d", len(rows), tc.rowsOK)
			}
		})
	}
}

// TestCSVChunkHeader reads a chunk that starts mid-file: it must still know
// the header, and a chunk at 0 must not return the header as a row.
func TestCSVChunkHeader(t *testing.T) {
	p := writeFile(t, t.TempDir(), "d.t.csv", []byte("a,b\n1,x\n2,y\n3,z\n"))
	rows, cols := mustRead(t, Chunk{Path: p, Format: FormatCSV, Start: 8, End: 12, StartLine: 3}, DefaultCSV())
	if !reflect.DeepEqual(cols, []string{"a", "b"}) {
		t.Errorf("columns %q", cols)
	}
	want := []gotRow{{[]string{"2", "y"}, 3, 12, 4}}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows %+v, want %+v", rows, want)
	}
	rows, _ = mustRead(t, Chunk{Path: p, Format: FormatCSV, Start: 0, End: 8, StartLine: 1}, DefaultCSV())
	checkVals(t, rows, [][]string{{"1", "x"}})
}

// TestCSVResume resumes from every row end and expects the rest of the rows.
func TestCSVResume(t *testing.T) { smallBuffers(t, cSVResume) }

func cSVResume(t *testing.T) {
	p := writeFile(t, t.TempDir(), "d.t.csv", []byte("a,b\n1,\"x\ny\"\n\n2,y\r\n3,z"))
	all, _ := mustRead(t, wholeChunk(p, FormatCSV), DefaultCSV())
	if len(all) != 3 {
		t.Fatalf("%d rows", len(all))
	}
	for i, r := range all {
		rest, cols, err := readChunk(t, wholeChunk(p, FormatCSV), DefaultCSV(), r.End, r.Nxt)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rest, all[i+1:]) && (len(rest) > 0 || i+1 < len(all)) {
			t.Errorf("resume at %d: %+v, want %+v", r.End, rest, all[i+1:])
		}
		if len(cols) != 2 {
			t.Errorf("resume at %d: columns %q", r.End, cols)
		}
	}
}

func TestOpenChunkErrors(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "d.t.sql", []byte("INSERT INTO t VALUES (1);"))
	for _, ch := range []Chunk{
		{Path: p, Format: FormatSQL, Start: 3, End: -1},
		{Path: p, Format: FormatCSV, Compression: CompressionGzip, Start: 3, End: -1},
		{Path: p, Format: "parquet", End: -1},
		{Path: dir + "/missing.csv", Format: FormatCSV, End: -1},
	} {
		if r, err := OpenChunk(ch, DefaultCSV(), 0, 0); err == nil {
			r.Close()
			t.Errorf("%+v: no error", ch)
		}
	}
}
