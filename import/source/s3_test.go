package source

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"storm/import/storage"
	"storm/internal/parquetgen"
	"storm/internal/s3test"
)

// useS3 points storm's storage at srv through endpoint (the server's own,
// or a proxy in front of it) for the test.
func useS3(t *testing.T, srv *s3test.Server, endpoint string) {
	t.Helper()
	storage.ConfigureS3(storage.S3Config{Endpoint: endpoint, Region: s3test.Region, ForcePathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	t.Cleanup(func() { storage.ConfigureS3(storage.S3Config{}) })
}

// TestS3SameAsLocal puts one dump in a directory and in a bucket of a real
// S3 server, and checks that everything source does gives the same result
// on both: discovery (mydumper names and routing rules), splitting (by
// scanning and by seeking), the rows of every chunk, a chunk resumed in its
// middle (a ranged GET from the checkpoint), and schema files.
func TestS3SameAsLocal(t *testing.T) {
	srv := s3test.StartT(t)
	useS3(t, srv, srv.Endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := srv.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	var big strings.Builder
	big.WriteString("id,name,note\n")
	for i := range 3000 {
		note := fmt.Sprintf("plain %d", i)
		if i%7 == 0 {
			note = fmt.Sprintf("\"two\nlines, %d\"", i) // a quoted terminator: a cut must not land inside
		}
		fmt.Fprintf(&big, "%d,name-%d,%s\n", i, i, note)
	}
	var plain strings.Builder // for strict-format splitting: ReadAt, a ranged GET per cut
	plain.WriteString("a,b\n")
	for i := range 2000 {
		fmt.Fprintf(&plain, "%d,\"v%d\"\n", i, i*i)
	}
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	zs := func(s string) []byte {
		var b bytes.Buffer
		w, _ := zstd.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	// A Parquet object, read through ReadAt (a ranged GET a call) and split
	// by row groups like a local file.
	pq := filepath.Join(t.TempDir(), "t4.parquet")
	if err := parquetgen.Write(pq, parquetgen.Options{FirstID: 1, Rows: 2000, RowGroup: 300, Compression: "zstd", Seed: 7}); err != nil {
		t.Fatal(err)
	}
	pqData, err := os.ReadFile(pq)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"db1.t4-schema.sql":              []byte(parquetgen.CreateTable("t4") + ";\n"),
		"db1.t4.00000.parquet":           pqData,
		"db1-schema-create.sql":          []byte("CREATE DATABASE `db1`;\n"),
		"db1.t1-schema.sql":              []byte("/*!40101 SET NAMES binary*/;\nCREATE TABLE `t1` (id int, name text, note text);\n"),
		"db1.t1.00000.csv":               []byte(big.String()),
		"db1.t1.00001.csv.gz":            gz("id,name,note\n9001,a,b\n9002,c,d\n"),
		"db1.t2-schema.sql.zst":          zs("CREATE TABLE `t2` (a int);"),
		"db1.t3-schema.sql":              []byte("CREATE TABLE `t3` (a int, b text);"),
		"db1.t3.00000.csv":               []byte(plain.String()),
		"db1.t2.00000.sql":               []byte("INSERT INTO `t2` VALUES (1),(2);\nINSERT INTO `t2` VALUES (3);\n"),
		"db1.t2.00001.sql.zst":           zs("INSERT INTO `t2` VALUES (4);\n"),
		"metadata":                       []byte("Started dump at: 2026-01-01\n"),
		"export/orders_part1.csv":        []byte("id,name,note\n1,x,y\n"),
		"export/nested/orders_part2.csv": []byte("id,name,note\n2,x,y\n"),
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := srv.Put(ctx, "bkt", "dumps/one/"+name, data); err != nil {
			t.Fatal(err)
		}
	}
	remote := "s3://bkt/dumps/one"
	rel := func(root, path string) string {
		if path == "" {
			return ""
		}
		return strings.TrimPrefix(filepath.ToSlash(strings.TrimPrefix(path, root)), "/")
	}
	// strip makes a layout comparable across roots: paths relative to it.
	strip := func(l *Layout, root string) *Layout {
		out := &Layout{Skipped: l.Skipped}
		for _, d := range l.Databases {
			out.Databases = append(out.Databases, Database{Name: d.Name, SchemaFile: rel(root, d.SchemaFile)})
		}
		for _, tb := range l.Tables {
			c := Table{DB: tb.DB, Name: tb.Name, SchemaFile: rel(root, tb.SchemaFile)}
			for _, f := range tb.Files {
				c.Files = append(c.Files, DataFile{Path: rel(root, f.Path), Size: f.Size, Format: f.Format, Compression: f.Compression})
			}
			out.Tables = append(out.Tables, c)
		}
		return out
	}
	routes := []Route{{Pattern: `^export/(?:nested/)?(\w+)_part\d+\.csv$`, Schema: "db2", Table: "$1", Type: "csv"}}
	for _, rs := range [][]Route{nil, routes} {
		local, err := DiscoverWith(dir, rs)
		if err != nil {
			t.Fatal(err)
		}
		inS3, err := DiscoverWith(remote, rs)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := strip(local, dir), strip(inS3, remote); !reflect.DeepEqual(a, b) {
			t.Fatalf("routes %v: discovered differently:\nlocal %+v\nS3    %+v", rs, a, b)
		}
		for _, tb := range inS3.Tables {
			for _, f := range tb.Files {
				if f.ETag == "" {
					t.Errorf("%s: no ETag", f.Path)
				}
			}
		}
		if rs == nil {
			continue
		}
		if len(inS3.Tables) != 5 || inS3.Tables[4].DB != "db2" || len(inS3.Tables[4].Files) != 2 {
			t.Errorf("routed tables %+v", inS3.Tables)
		}
	}

	layout, err := Discover(remote)
	if err != nil {
		t.Fatal(err)
	}
	for _, strict := range []bool{false, true} {
		cfg := DefaultCSV()
		cfg.StrictFormat = strict
		for _, tb := range layout.Tables {
			for _, f := range tb.Files {
				if strict && strings.HasSuffix(f.Path, "t1.00000.csv") {
					continue // quoted terminators: not a strict-format file
				}
				lf := f
				lf.Path, lf.ETag = filepath.Join(dir, filepath.FromSlash(rel(remote, f.Path))), ""
				want, err := Split(lf, 4096, cfg)
				if err != nil {
					t.Fatal(err)
				}
				got, err := Split(f, 4096, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%s: %d chunks from S3, %d from the directory", f.Path, len(got), len(want))
				}
				for i := range got {
					g, w := got[i], want[i]
					if g.Start != w.Start || g.End != w.End || g.StartLine != w.StartLine || g.DataBytes != w.DataBytes || g.ETag != f.ETag || g.Size != f.Size {
						t.Fatalf("%s chunk %d: S3 %+v, directory %+v", f.Path, i, g, w)
					}
					gr, gc, err := readChunk(t, g, cfg, 0, 0)
					if err != nil {
						t.Fatalf("read %s chunk %d: %v", f.Path, i, err)
					}
					wr, wc, _ := readChunk(t, w, cfg, 0, 0)
					if !reflect.DeepEqual(gr, wr) || !reflect.DeepEqual(gc, wc) {
						t.Fatalf("%s chunk %d: rows differ", f.Path, i)
					}
					if len(gr) > 2 {
						// A takeover: resume after the row a checkpoint saw.
						k := len(gr) / 2
						rest, _, err := readChunk(t, g, cfg, gr[k].End, gr[k].Nxt)
						if err != nil || !reflect.DeepEqual(rest, gr[k+1:]) {
							t.Fatalf("%s chunk %d resumed at %d: %d rows (%v), want %d", f.Path, i, gr[k].End, len(rest), err, len(gr)-k-1)
						}
					}
				}
				if (strings.HasSuffix(f.Path, "t1.00000.csv") || strings.HasSuffix(f.Path, "t3.00000.csv") || strings.HasSuffix(f.Path, ".parquet")) && len(got) < 5 {
					t.Errorf("%s: %d chunks of 4 KiB for %d bytes", f.Path, len(got), f.Size)
				}
			}
		}
	}
	for _, tb := range layout.Tables {
		got, err := ReadSchemaNamed(tb.SchemaFile, tb.Name)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ReadSchemaNamed(filepath.Join(dir, rel(remote, tb.SchemaFile)), tb.Name)
		if got != want || !strings.Contains(got, "CREATE TABLE") {
			t.Errorf("schema %s: %q, want %q", tb.SchemaFile, got, want)
		}
	}
}
