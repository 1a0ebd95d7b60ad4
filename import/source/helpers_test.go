package source

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// N stands for NULL in expected rows.
const N = "\x00NULL\x00"

type gotRow struct {
	Vals           []string
	Line, End, Nxt int64
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func vals(r Row) []string {
	out := make([]string, len(r.Values))
	for i, v := range r.Values {
		if v.Null {
			out[i] = N
		} else {
			out[i] = string(v.Data)
		}
	}
	return out
}

// readChunk reads all rows of ch, copying them, and returns the first error
// other than io.EOF.
func readChunk(t *testing.T, ch Chunk, cfg CSVConfig, resumeOff, resumeLine int64) ([]gotRow, []string, error) {
	t.Helper()
	r, err := OpenChunk(ch, cfg, resumeOff, resumeLine)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var rows []gotRow
	for {
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			return rows, r.Columns(), nil
		}
		if err != nil {
			return rows, r.Columns(), err
		}
		rows = append(rows, gotRow{vals(row), row.Line, row.End, row.NextLine})
	}
}

func wholeChunk(path string, f Format) Chunk {
	return Chunk{Path: path, Format: f, Start: 0, End: -1, StartLine: 1}
}

func mustRead(t *testing.T, ch Chunk, cfg CSVConfig) ([]gotRow, []string) {
	t.Helper()
	rows, cols, err := readChunk(t, ch, cfg, 0, 0)
	if err != nil {
		t.Fatalf("read %s: %v", ch.Path, err)
	}
	return rows, cols
}

func onlyVals(rows []gotRow) [][]string {
	out := [][]string{}
	for _, r := range rows {
		out = append(out, r.Vals)
	}
	return out
}

func checkVals(t *testing.T, got []gotRow, want [][]string) {
	t.Helper()
	if want == nil {
		want = [][]string{}
	}
	if g := onlyVals(got); !reflect.DeepEqual(g, want) {
		t.Errorf("rows:\n got  %q\n want %q", g, want)
	}
}

// checkParseError wants a *ParseError at line whose reason contains substr.
func checkParseError(t *testing.T, err error, line int64, substr string) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v: want a *ParseError", err)
	}
	if pe.Line != line || !strings.Contains(pe.Error(), substr) || pe.File == "" {
		t.Errorf("error %v: want line %d and %q", err, line, substr)
	}
}

// smallBuffers runs f with the normal read buffer and with one of a few
// bytes, so that fields, tokens and escapes straddle buffer refills.
func smallBuffers(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, n := range []int{bufSize, 3, 7} {
		t.Run(fmt.Sprintf("buf%d", n), func(t *testing.T) {
			old := bufSize
			bufSize = n
			defer func() { bufSize = old }()
			f(t)
		})
	}
}
