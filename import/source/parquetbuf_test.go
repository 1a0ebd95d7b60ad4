package source

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"storm/internal/parquetgen"
)

// countingReaderAt counts the reads that reach the file under a pqBuffer
// and the bytes they ask for.
type countingReaderAt struct {
	r            io.ReaderAt
	reads, bytes int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	c.bytes += int64(len(p))
	return c.r.ReadAt(p, off)
}

// held is what the buffer holds of row groups, besides the tail.
func (b *pqBuffer) held() int64 {
	n := int64(len(b.whole.data))
	for _, c := range b.cols {
		n += int64(len(c.data))
	}
	return n
}

// TestPQBuffer reads every row of a file of several row groups through a
// pqBuffer at limits from more than a row group down to windows smaller
// than parquet-go's 4 KiB reads (reads straddling windows, pages read
// straight through, the tail's boundary), checks each value, and that the
// buffer never holds more of a row group than its limit allows.
func TestPQBuffer(t *testing.T) {
	const rows, seed = 3000, 11
	path := filepath.Join(t.TempDir(), "d.t.parquet")
	if err := parquetgen.Write(path, parquetgen.Options{FirstID: 1, Rows: rows, RowGroup: 700, Compression: "gzip", Seed: seed}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	defer func(w int64) { pqMinWindow = w }(pqMinWindow)
	for _, tc := range []struct {
		name             string
		limit, minWindow int64
		whole            bool // row groups read whole: one read each
	}{
		{"whole row groups", 8 << 20, 64 << 10, true},
		{"windows of 16 KiB", 64 << 10, 16 << 10, false},
		{"windows of 1 KiB", 1 << 10, 1 << 10, false},
		{"windows of 100 bytes", 100, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pqMinWindow = tc.minWindow
			cnt := &countingReaderAt{r: f}
			buf := newPQBuffer(cnt, st.Size(), tc.limit)
			r, err := newParquetReader(buf, st.Size(), path, 0, -1, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var most int64
			for i := int64(1); ; i++ {
				row, err := r.Next()
				if err == io.EOF {
					if i-1 != rows {
						t.Fatalf("%d rows, want %d", i-1, rows)
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				checkRow(t, parquetgen.Row(seed, i), row, time.UTC)
				most = max(most, buf.held())
			}
			cols := int64(len(buf.groups[0].chunks))
			bound := max(tc.limit, cols*tc.minWindow)
			t.Logf("%d reads of the file, %d bytes (file %d); held at most %d bytes (bound %d)", cnt.reads, cnt.bytes, st.Size(), most, bound)
			if most > bound {
				t.Errorf("held %d bytes of a row group, bound %d", most, bound)
			}
			// The magic bytes, the tail, and one read a row group (none
			// for the part of the last one the tail holds).
			if groups := int64(len(buf.groups)); tc.whole && cnt.reads > 2+groups {
				t.Errorf("%d reads of the file, want at most %d for %d row groups", cnt.reads, 2+groups, groups)
			}
		})
	}
}
