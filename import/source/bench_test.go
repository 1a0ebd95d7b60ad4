package source

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

const benchBytes = 64 << 20

// benchFile writes about benchBytes of rows made by row(i).
func benchFile(b *testing.B, name string, head, tail string, row func(w io.Writer, i int)) (string, int64) {
	b.Helper()
	p := filepath.Join(b.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString(head)
	for i := 0; ; i++ {
		row(w, i)
		if i%1024 == 0 {
			w.Flush()
			if st, _ := f.Stat(); st.Size() > benchBytes {
				break
			}
		}
	}
	w.WriteString(tail)
	w.Flush()
	f.Close()
	st, _ := os.Stat(p)
	return p, st.Size()
}

func simpleRow(w io.Writer, i int) {
	fmt.Fprintf(w, "%d,%d,user%d,%d.%02d,2024-01-%02d 12:34:56,\\N\n", i, i%1000, i, i%9999, i%100, 1+i%28)
}

func quotedRow(w io.Writer, i int) {
	fmt.Fprintf(w, "%d,\"name %d, \"\"the\"\" \\\\ %d\",\"line\nbreak\",%d.5\r\n", i, i, i%77, i%1000)
}

func benchRead(b *testing.B, ch Chunk, cfg CSVConfig, size int64) {
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		r, err := OpenChunk(ch, cfg, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			row, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n += len(row.Values)
		}
		r.Close()
		if n == 0 {
			b.Fatal("no rows")
		}
	}
}

func BenchmarkCSVReadSimple(b *testing.B) {
	p, size := benchFile(b, "d.t.csv", "a,b,c,d,e,f\n", "", simpleRow)
	benchRead(b, wholeChunk(p, FormatCSV), DefaultCSV(), size)
}

func BenchmarkCSVReadQuoted(b *testing.B) {
	p, size := benchFile(b, "d.t.csv", "a,b,c,d\n", "", quotedRow)
	benchRead(b, wholeChunk(p, FormatCSV), DefaultCSV(), size)
}

func BenchmarkSQLRead(b *testing.B) {
	p, size := benchFile(b, "d.t.sql", "/*!40101 SET NAMES binary*/;\nINSERT INTO `t` VALUES\n", ";\n", func(w io.Writer, i int) {
		sep := ","
		if i%1000 == 999 {
			sep = ";\nINSERT INTO `t` VALUES\n"
		}
		if i > 0 {
			io.WriteString(w, sep)
		}
		fmt.Fprintf(w, "(%d,%d,'user%d',%d.%02d,'2024-01-%02d 12:34:56',NULL,'it\\'s')", i, i%1000, i, i%9999, i%100, 1+i%28)
	})
	benchRead(b, wholeChunk(p, FormatSQL), CSVConfig{}, size)
}

func benchSplit(b *testing.B, strict bool, row func(io.Writer, int)) {
	p, size := benchFile(b, "d.t.csv", "a,b,c,d\n", "", row)
	cfg := DefaultCSV()
	cfg.StrictFormat = strict
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		chunks, err := Split(DataFile{Path: p, Size: size, Format: FormatCSV}, 4<<20, cfg)
		if err != nil || len(chunks) < 10 {
			b.Fatal(err, len(chunks))
		}
	}
}

func BenchmarkSplitScanQuoted(b *testing.B) { benchSplit(b, false, quotedRow) }
func BenchmarkSplitScanSimple(b *testing.B) { benchSplit(b, false, simpleRow) }

// BenchmarkSplitStrict is bound by counting lines, which reads the file.
func BenchmarkSplitStrict(b *testing.B) { benchSplit(b, true, simpleRow) }
