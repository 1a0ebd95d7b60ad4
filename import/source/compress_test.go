package source

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func compress(t *testing.T, c Compression, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch c {
	case CompressionGzip:
		w := gzip.NewWriter(&buf)
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case CompressionZstd:
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

var compressions = map[Compression]string{CompressionGzip: "gz", CompressionZstd: "zst"}

// bigCSV is large enough that a truncated copy still holds whole rows.
func bigCSV() []byte {
	var b strings.Builder
	b.WriteString("id,name\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "%d,\"name %d, with \"\"quotes\"\"\nand a newline\"\n", i, i*7919%10007)
	}
	return []byte(b.String())
}

func TestCompressedRoundTrip(t *testing.T) {
	csvData := bigCSV()
	sqlData := []byte(mydumperDump)
	for c, ext := range compressions {
		for _, tc := range []struct {
			format Format
			data   []byte
		}{{FormatCSV, csvData}, {FormatSQL, sqlData}} {
			t.Run(ext+"/"+string(tc.format), func(t *testing.T) {
				dir := t.TempDir()
				plain := writeFile(t, dir, "d.t."+string(tc.format), tc.data)
				packed := writeFile(t, dir, "d.t."+string(tc.format)+"."+ext, compress(t, c, tc.data))
				want, wantCols := mustRead(t, wholeChunk(plain, tc.format), DefaultCSV())
				ch := wholeChunk(packed, tc.format)
				ch.Compression = c
				got, cols := mustRead(t, ch, DefaultCSV())
				if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(cols, wantCols) {
					t.Fatalf("compressed read differs: %d rows, want %d", len(got), len(want))
				}
				// Resume at a few points: parsing from the start and skipping.
				for _, i := range []int{0, 1, len(want) / 2, len(want) - 2, len(want) - 1} {
					if i < 0 || i >= len(want) {
						continue
					}
					rest, cols, err := readChunk(t, ch, DefaultCSV(), want[i].End, want[i].Nxt)
					if err != nil {
						t.Fatal(err)
					}
					if len(rest) != len(want)-i-1 || len(rest) > 0 && !reflect.DeepEqual(rest, want[i+1:]) {
						t.Fatalf("resume after row %d: %d rows, want %d", i, len(rest), len(want)-i-1)
					}
					if tc.format == FormatCSV && len(cols) != 2 {
						t.Errorf("resume: columns %q", cols)
					}
				}
			})
		}
	}
}

func TestCompressedDamaged(t *testing.T) {
	data := bigCSV()
	for c, ext := range compressions {
		packed := compress(t, c, data)
		// Flipping bytes in the middle may yield garbage that the CSV parser
		// rejects first; a bad checksum at the end is always the codec's.
		flipped := bytes.Clone(packed)
		flipped[len(flipped)-6] ^= 0x55
		for name, damaged := range map[string][]byte{
			"truncated":      packed[:len(packed)/2],
			"header only":    packed[:5],
			"empty":          {},
			"bad checksum":   flipped,
			"missing footer": packed[:len(packed)-4],
		} {
			t.Run(ext+"/"+name, func(t *testing.T) {
				p := writeFile(t, t.TempDir(), "d.t.csv."+ext, damaged)
				ch := wholeChunk(p, FormatCSV)
				ch.Compression = c
				_, _, err := readChunk(t, ch, DefaultCSV(), 0, 0)
				kind := map[Compression]string{CompressionGzip: "gzip", CompressionZstd: "zstd"}[c]
				if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "truncated or corrupt "+kind+" data") {
					t.Errorf("error %v: want the file name and \"truncated or corrupt %s data\"", err, kind)
				}
			})
		}
	}
}
