package source

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// sameAsValues reads the file at p twice, decoded (and then encoded as a
// writer encodes values) and encoded by the reader, and fails at the first
// row, position or error that differs.
func sameAsValues(t *testing.T, p string, cfg CSVConfig) (rows int) {
	t.Helper()
	ch := wholeChunk(p, FormatCSV)
	dec, derr := OpenChunk(ch, cfg, 0, 0)
	enc, eerr := OpenChunk(ch, cfg, 0, 0)
	if (derr == nil) != (eerr == nil) {
		t.Fatalf("open: %v, with TSV %v", derr, eerr)
	}
	if derr != nil {
		return 0
	}
	defer dec.Close()
	defer enc.Close()
	enc.(TSVEncoder).EncodeTSV()
	for {
		a, aerr := dec.Next()
		b, berr := enc.Next()
		if (aerr == nil) != (berr == nil) || aerr != nil && aerr.Error() != berr.Error() {
			t.Fatalf("row %d: %v, with TSV %v", rows+1, aerr, berr)
		}
		if errors.Is(aerr, io.EOF) || aerr != nil {
			return rows
		}
		rows++
		if want := a.AppendTSV(nil); !bytes.Equal(b.TSV, want) || b.Values != nil {
			t.Fatalf("row %d: TSV %q, want %q", rows, b.TSV, want)
		}
		if a.Line != b.Line || a.End != b.End || a.NextLine != b.NextLine || a.Len() != b.Len() {
			t.Fatalf("row %d: at line %d, end %d, next %d, %d fields; with TSV %d, %d, %d, %d fields",
				rows, a.Line, a.End, a.NextLine, a.Len(), b.Line, b.End, b.NextLine, b.Len())
		}
	}
}

func TestCSVEncodeTSV(t *testing.T) {
	inputs := []string{
		"a,b\n1,2\n",
		"\"a\nb\",\"c\"\"d\"\r\n\\N,\"\\N\",,\n",
		"x||'y|\n'|\nz",
		"a\\\nb,c\n\n\n",
		"h1,h2\n\"tab\there\",back\\\\slash\nnul\\0,\"ctrl-z \x1a and cr \r!\"\n,\n\"\",\\N\nNULL,\"NULL\"\n",
		"h\n\"only a quoted field with \"\"quotes\"\" and \\\"escapes\\\"\"\n",
		"h1,h2\n1,2,\n3,\n", // trailing separators: an empty last field
		"\"ab\"c,d\n",       // an error, at the same row either way
		"\"open",
		// Every escape letter in quoted fields: \\ \n \t \r \0 \Z are the
		// same two bytes in LOAD DATA text, the rest are not.
		"h1,h2\n\"\\\\\\n\\t\\r\\0\\Z\\b\\\"\\x\\N\\,\",\"a\\\\\\\\b\\nc\"\n\"\\\\\",\"\\\\\\\\\\\\\"\"\n",
	}
	for _, n := range []int{bufSize, 3, 7} {
		for di, cfg := range fuzzDialects {
			for ii, in := range inputs {
				t.Run(fmt.Sprintf("buf%d/dialect%d/input%d", n, di, ii), func(t *testing.T) {
					old := bufSize
					bufSize = n
					defer func() { bufSize = old }()
					sameAsValues(t, writeFile(t, t.TempDir(), "d.t.csv", []byte(in)), cfg)
				})
			}
		}
	}
}
