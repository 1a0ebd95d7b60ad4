package source

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// csvGen writes random CSV in a dialect and remembers what it meant.
type csvGen struct {
	rng    *rand.Rand
	cfg    CSVConfig
	strict bool // no terminator inside a field, raw or escaped
	buf    bytes.Buffer
	want   [][]string
	lines  []int64
}

const alphabet = "abN x,|\"'\\\n\r\t;"

func (g *csvGen) newline() {
	if g.cfg.Terminator != "" {
		g.buf.WriteString(g.cfg.Terminator)
	} else if g.rng.IntN(3) == 0 {
		g.buf.WriteString("\r\n")
	} else {
		g.buf.WriteString("\n")
	}
}

func (g *csvGen) file(rows int) []byte {
	if g.cfg.Header {
		g.buf.WriteString("c1" + g.cfg.Separator + "c2")
		g.newline()
	}
	for i := range rows {
		if g.rng.IntN(8) == 0 {
			g.newline() // a blank line
		}
		g.lines = append(g.lines, 1+int64(bytes.Count(g.buf.Bytes(), nl)))
		n := 1 + g.rng.IntN(4)
		var row []string
		for j := range n {
			if j > 0 {
				g.buf.WriteString(g.cfg.Separator)
			}
			row = append(row, g.field(n == 1))
		}
		g.want = append(g.want, row)
		if i < rows-1 || g.rng.IntN(2) == 0 {
			g.newline()
		}
	}
	return g.buf.Bytes()
}

func (g *csvGen) field(alone bool) string {
	if g.rng.IntN(6) == 0 {
		g.buf.WriteString(`\N`)
		return N
	}
	var v []byte
	for range g.rng.IntN(8) {
		c := alphabet[g.rng.IntN(len(alphabet))]
		if g.strict && len(g.cfg.Terminator) == 1 && c == g.cfg.Terminator[0] {
			continue // strict format: no terminator inside a field, even escaped
		}
		v = append(v, c)
	}
	if g.rng.IntN(2) == 0 || alone && len(v) == 0 {
		g.quoted(v)
	} else {
		g.unquoted(v)
	}
	return string(v)
}

func (g *csvGen) special(c byte) bool {
	term := g.cfg.Terminator + "\r\n"
	return c == '\\' || strings.IndexByte(g.cfg.Separator+term, c) >= 0
}

func (g *csvGen) escaped(c byte) {
	switch {
	case c == '\n' && (g.strict || g.rng.IntN(2) == 0):
		g.buf.WriteString(`\n`)
	case c == '\r':
		g.buf.WriteString(`\r`)
	default:
		g.buf.WriteByte('\\')
		g.buf.WriteByte(c)
	}
}

func (g *csvGen) unquoted(v []byte) {
	for i, c := range v {
		if g.special(c) || i == 0 && c == g.cfg.Delimiter[0] {
			g.escaped(c)
		} else {
			g.buf.WriteByte(c)
		}
	}
}

func (g *csvGen) quoted(v []byte) {
	q := g.cfg.Delimiter[0]
	g.buf.WriteByte(q)
	for _, c := range v {
		switch {
		case c == q && g.rng.IntN(2) == 0:
			g.buf.Write([]byte{q, q})
		case c == q || c == '\\' || c == '\n' && g.strict:
			g.escaped(c)
		default:
			g.buf.WriteByte(c)
		}
	}
	g.buf.WriteByte(q)
}

func dialects() map[string]CSVConfig {
	multi := CSVConfig{Separator: "||", Delimiter: "'", Terminator: "|\n", Null: `\N`, BackslashEscape: true}
	semi := CSVConfig{Separator: "\t", Delimiter: `"`, Terminator: ";", Null: `\N`, BackslashEscape: true, Header: true}
	return map[string]CSVConfig{"default": DefaultCSV(), "no header": noHeader(), "multi": multi, "semicolon": semi}
}

// TestSplitProperty checks on random files that the chunks of every shard
// size together read exactly the rows of the whole file, with the same line
// numbers and offsets, and that resuming from any row end reads the rest.
func TestSplitProperty(t *testing.T) { smallBuffers(t, splitProperty) }

func splitProperty(t *testing.T) {
	for name, cfg := range dialects() {
		for seed := range 25 {
			strict := seed%2 == 1
			t.Run(fmt.Sprintf("%s/%d", name, seed), func(t *testing.T) {
				g := &csvGen{rng: rand.New(rand.NewPCG(uint64(seed), 7)), cfg: cfg, strict: strict}
				data := g.file(1 + g.rng.IntN(40))
				p := writeFile(t, t.TempDir(), "d.t.csv", data)
				whole, _ := mustRead(t, wholeChunk(p, FormatCSV), cfg)
				checkVals(t, whole, g.want)
				var lines []int64
				for _, r := range whole {
					lines = append(lines, r.Line)
				}
				if !reflect.DeepEqual(lines, g.lines) {
					t.Fatalf("lines %v, want %v\n%q", lines, g.lines, data)
				}
				modes := []bool{false}
				if strict {
					modes = append(modes, true)
				}
				for _, mode := range modes {
					c := cfg
					c.StrictFormat = mode
					for _, size := range shardSizes(len(data)) {
						checkSplit(t, p, int64(len(data)), size, c, whole)
					}
				}
				if seed < 6 {
					checkResume(t, wholeChunk(p, FormatCSV), cfg, whole)
				}
			})
		}
	}
}

func shardSizes(n int) []int64 {
	s := []int64{1, 2, 3, 5, 8, 13, 21, 34, 55}
	for _, k := range []int{n / 3, n / 2, n - 1, n, n + 1} {
		if k > 0 {
			s = append(s, int64(k))
		}
	}
	return s
}

func checkSplit(t *testing.T, path string, size, shard int64, cfg CSVConfig, whole []gotRow) {
	t.Helper()
	chunks, err := Split(DataFile{Path: path, Size: size, Format: FormatCSV}, shard, cfg)
	if err != nil {
		t.Fatalf("split %d strict=%v: %v", shard, cfg.StrictFormat, err)
	}
	var got []gotRow
	for i, ch := range chunks {
		if i == 0 && (ch.Start != 0 || ch.StartLine != 1) || i > 0 && ch.Start != chunks[i-1].End ||
			(i == len(chunks)-1) != (ch.End == -1) || ch.End >= 0 && ch.End <= ch.Start || ch.Start >= size {
			t.Fatalf("split %d strict=%v: bad chunks %+v", shard, cfg.StrictFormat, chunks)
		}
		rows, _ := mustRead(t, ch, cfg)
		if len(rows) > 0 && i > 0 && rows[0].Line < ch.StartLine {
			t.Fatalf("chunk %+v: first row at line %d", ch, rows[0].Line)
		}
		if shard == size/3 {
			checkResume(t, ch, cfg, rows) // resuming inside a chunk stops at its end
		}
		got = append(got, rows...)
	}
	if !reflect.DeepEqual(got, whole) {
		t.Fatalf("split %d strict=%v: chunks %+v read\n%+v\nwant\n%+v", shard, cfg.StrictFormat, chunks, got, whole)
	}
	if shard == 1 && int64(len(chunks)) < int64(len(whole))/2 {
		t.Errorf("split 1: only %d chunks for %d rows", len(chunks), len(whole))
	}
}

func checkResume(t *testing.T, ch Chunk, cfg CSVConfig, whole []gotRow) {
	t.Helper()
	for i, r := range whole {
		rest, _, err := readChunk(t, ch, cfg, r.End, r.Nxt)
		if err != nil {
			t.Fatal(err)
		}
		if len(rest) != len(whole)-i-1 || len(rest) > 0 && !reflect.DeepEqual(rest, whole[i+1:]) {
			t.Fatalf("resume at %d (line %d): %+v, want %+v", r.End, r.Nxt, rest, whole[i+1:])
		}
	}
}

func TestSplitSimple(t *testing.T) {
	dir := t.TempDir()
	data := "h1,h2\n" + strings.Repeat("1,abcdefgh\n", 10) // 6 + 10*11 bytes
	p := writeFile(t, dir, "d.t.csv", []byte(data))
	f := DataFile{Path: p, Size: int64(len(data)), Format: FormatCSV}
	for _, strict := range []bool{false, true} {
		cfg := DefaultCSV()
		cfg.StrictFormat = strict
		chunks, err := Split(f, 30, cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Rows start at 6+11k, on line k+2; nominal cuts 30, 60, 90.
		want := []Chunk{
			{Path: p, Format: FormatCSV, Start: 0, End: 39, StartLine: 1},
			{Path: p, Format: FormatCSV, Start: 39, End: 61, StartLine: 5},
			{Path: p, Format: FormatCSV, Start: 61, End: 94, StartLine: 7},
			{Path: p, Format: FormatCSV, Start: 94, End: -1, StartLine: 10},
		}
		if !reflect.DeepEqual(chunks, want) {
			t.Errorf("strict=%v: %+v\nwant %+v", strict, chunks, want)
		}
	}
	// Not split: small, compressed or SQL.
	for _, f := range []DataFile{
		{Path: p, Size: int64(len(data)), Format: FormatCSV, Compression: CompressionGzip},
		{Path: p, Size: int64(len(data)), Format: FormatSQL},
		{Path: p, Size: 20, Format: FormatCSV},
	} {
		chunks, err := Split(f, 20, DefaultCSV())
		if err != nil || len(chunks) != 1 || chunks[0].Start != 0 || chunks[0].End != -1 || chunks[0].StartLine != 1 ||
			chunks[0].Compression != f.Compression || chunks[0].Format != f.Format {
			t.Errorf("%+v: %+v %v", f, chunks, err)
		}
	}
}

// TestSplitHeaderOnlyChunk: a cut inside the header would leave a chunk
// with no rows; it is merged into the first chunk. Cuts 12 and 24 fall in
// the header (21 bytes) and on no row start: only the row at 25 starts one.
func TestSplitHeaderOnlyChunk(t *testing.T) {
	data := "a_long_header_name,b\n1,2\n3,4\n"
	p := writeFile(t, t.TempDir(), "d.t.csv", []byte(data))
	for _, strict := range []bool{false, true} {
		cfg := DefaultCSV()
		cfg.StrictFormat = strict
		chunks, err := Split(DataFile{Path: p, Size: int64(len(data)), Format: FormatCSV}, 12, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(chunks) != 2 || chunks[0].End != 25 || chunks[1].StartLine != 3 {
			t.Errorf("strict=%v: %+v", strict, chunks)
		}
	}
}

func TestSplitUnclosedQuote(t *testing.T) {
	data := "1,a\n2,\"b\n" + strings.Repeat("3,c\n", 10)
	p := writeFile(t, t.TempDir(), "d.t.csv", []byte(data))
	_, err := Split(DataFile{Path: p, Size: int64(len(data)), Format: FormatCSV}, 8, noHeader())
	checkParseError(t, err, 2, "unclosed")
}

// TestSplitBackslashRuns: the split's scan of a quoted field jumps from
// delimiter to delimiter and decides from the run of backslashes before
// one whether it is escaped. Runs of every length, before the closing
// delimiter, before a newline, at the field's start, and cut by every
// buffer size, must give the rows and lines the reader gives.
func TestSplitBackslashRuns(t *testing.T) {
	cases := map[string]string{
		"even runs close":   "1,\"a\\\\\",x\n2,\"\\\\\\\\\",y\n",
		"odd runs escape":   "1,\"a\\\",b\",x\n2,\"\\\\\\\"\n\",y\n",
		"escaped newline":   "1,\"a\\\nb\\\\\",x\n2,\"\\\n\",y\n",
		"doubled delimiter": "1,\"a\"\"\\\\\"\"b\",x\n2,\"\"\"\",y\n",
		"run at start":      "1,\"\\\\\\\\\\\"\\\\\",x\n2,\"\",y\n",
		"long field":        "1,\"" + strings.Repeat("ab\\\\c\\\"\n", 40) + "\",x\n2,\"z\",y\n",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			smallBuffers(t, func(t *testing.T) {
				data := []byte(strings.Repeat(body, 6))
				p := writeFile(t, t.TempDir(), "d.t.csv", data)
				cfg := noHeader()
				whole, _ := mustRead(t, wholeChunk(p, FormatCSV), cfg)
				if len(whole) != 12 {
					t.Fatalf("%d rows, want 12", len(whole))
				}
				for _, size := range shardSizes(len(data)) {
					checkSplit(t, p, int64(len(data)), size, cfg, whole)
				}
			})
		})
	}
}
