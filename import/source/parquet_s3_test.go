package source

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"storm/internal/parquetgen"
	"storm/internal/s3test"
)

// TestParquetS3Requests reads each shard of a Parquet object of several
// row groups from a real S3 server, through a proxy that counts the
// requests, checks every row, and bounds the GETs by what the footer says:
// parquet-go alone reads through a 4 KiB buffer, a GET a refill (106 GETs
// a shard of one 900 KB row group of 29 columns here).
//
//   - opening a shard: one HEAD (the planned version), one GET of the
//     magic bytes at the start, one of the object's tail (the footer);
//   - a row group of at most pqReadLimit bytes: one GET;
//   - a bigger one: each column chunk in windows of limit/columns (at
//     least pqMinWindow) bytes, read once for its dictionary and once for
//     its pages: at most 2*ceil(chunk/window) GETs a column chunk.
func TestParquetS3Requests(t *testing.T) {
	srv := s3test.StartT(t)
	cnt := srv.Count(t)
	useS3(t, srv, cnt.Endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := srv.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	const rows, group, seed = 20000, 5000, 5
	local := filepath.Join(t.TempDir(), "d.t.parquet")
	if err := parquetgen.Write(local, parquetgen.Options{FirstID: 1, Rows: rows, RowGroup: group, Compression: "snappy", Seed: seed}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Put(ctx, "bkt", "d/d.t.parquet", data); err != nil {
		t.Fatal(err)
	}
	// The structure, read from the local copy.
	lf, err := os.Open(local)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	pf, err := parquet.OpenFile(lf, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	md := pf.Metadata()
	if len(md.RowGroups) != rows/group {
		t.Fatalf("%d row groups, want %d", len(md.RowGroups), rows/group)
	}
	groupBytes := func(g int) (span int64, chunks []int64) {
		lo, hi := int64(len(data)), int64(0)
		for _, c := range md.RowGroups[g].Columns {
			from := c.MetaData.DataPageOffset
			if d := c.MetaData.DictionaryPageOffset; d > 0 && d < from {
				from = d
			}
			lo, hi = min(lo, from), max(hi, from+c.MetaData.TotalCompressedSize)
			chunks = append(chunks, c.MetaData.TotalCompressedSize)
		}
		return hi - lo, chunks
	}
	biggest := int64(0)
	for g := range md.RowGroups {
		span, _ := groupBytes(g)
		biggest = max(biggest, span)
	}

	layout, err := Discover("s3://bkt/d")
	if err != nil {
		t.Fatal(err)
	}
	f := layout.Tables[0].Files[0]
	defer func(l, w int64) { pqReadLimit, pqMinWindow = l, w }(pqReadLimit, pqMinWindow)
	for _, tc := range []struct {
		name             string
		shardSize        int64
		limit, minWindow int64
	}{
		{"a row group a shard, read whole", 1, 8 << 20, 64 << 10},
		{"two row groups a shard, read whole", biggest + 1, 8 << 20, 64 << 10},
		{"row groups over the limit, in windows", 1, biggest / 4, 16 << 10},
		{"two row groups over the limit, in windows", biggest + 1, biggest / 4, 16 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pqReadLimit, pqMinWindow = tc.limit, tc.minWindow
			chunks, err := Split(f, tc.shardSize, DefaultCSV())
			if err != nil {
				t.Fatal(err)
			}
			g := 0 // the first row group of the shard
			for i, ch := range chunks {
				cnt.Reset()
				r, err := OpenChunk(ch, DefaultCSV(), 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				n := int64(0)
				for {
					row, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					checkRow(t, parquetgen.Row(seed, ch.Start+n+1), row, time.UTC)
					n++
				}
				r.Close()
				if n != ch.End-ch.Start {
					t.Fatalf("shard %d: %d rows, want %d", i, n, ch.End-ch.Start)
				}
				bound, least := 2, 0 // the magic bytes and the tail
				var rowGroups []string
				for read := int64(0); read < n; g++ {
					span, cs := groupBytes(g)
					read += md.RowGroups[g].NumRows
					rowGroups = append(rowGroups, fmt.Sprint(span))
					if span <= tc.limit {
						bound++
						continue
					}
					window := max(tc.limit/int64(len(cs)), tc.minWindow)
					for _, c := range cs {
						bound += 2 * int((c+window-1)/window)
					}
					least += len(cs) // each column chunk read on its own
				}
				gets, heads := cnt.N(s3test.ReqGet), cnt.N(s3test.ReqHead)
				t.Logf("shard %d: row groups of %v bytes, %d rows: %d GETs (at most %d), %d HEAD", i, rowGroups, n, gets, bound, heads)
				if gets > bound || gets < least || heads != 1 {
					t.Errorf("shard %d: %d GETs, want %d..%d; %d HEADs, want 1", i, gets, least, bound, heads)
				}
				// A taken-over shard resumes mid row group, through the
				// same buffer.
				at := ch.Start + n/2 + 1
				rest, _, err := readChunk(t, ch, DefaultCSV(), at, at+1)
				if err != nil || int64(len(rest)) != ch.End-at || rest[0].Line != at+1 {
					t.Fatalf("shard %d resumed at row %d: %d rows (%v), want %d", i, at, len(rest), err, ch.End-at)
				}
			}
		})
	}
}
