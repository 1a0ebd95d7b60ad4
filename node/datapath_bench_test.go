package node

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"storm/import/checksum"
	"storm/import/sink"
	"storm/import/source"
	"storm/internal/gendump"
)

// The data path of a worker without the database: read a gendump CSV file,
// hash every row for the digest, buffer it for LOAD DATA, drop each full
// batch. What storm's CPU costs per row besides the server's.
//
//	go test ./node -run '^$' -bench DataPath -benchtime 3x -cpuprofile cpu.out

// gendumpColumns reads the digest column types of a generated table from its
// schema file, as information_schema would give them on MariaDB.
func gendumpColumns(tb testing.TB, schemaFile string) []checksum.Column {
	tb.Helper()
	b, err := os.ReadFile(schemaFile)
	if err != nil {
		tb.Fatal(err)
	}
	line := regexp.MustCompile("^\\s*`([^`]+)` ([a-z]+)(\\([^)]*\\))?( unsigned)?")
	var cols []checksum.Column
	for _, l := range strings.Split(string(b), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		c := checksum.Column{Name: m[1], DataType: m[2], ColumnType: m[2] + m[3] + m[4], TruncFraction: true}
		if args := strings.Trim(m[3], "()"); args != "" {
			parts := strings.Split(args, ",")
			switch c.DataType {
			case "decimal":
				if len(parts) == 2 {
					c.Scale, _ = strconv.Atoi(parts[1])
				}
			case "datetime", "timestamp", "time":
				c.Scale, _ = strconv.Atoi(parts[0])
			}
		}
		cols = append(cols, c)
	}
	if len(cols) == 0 {
		tb.Fatalf("no columns in %s", schemaFile)
	}
	return cols
}

func BenchmarkDataPath(b *testing.B) {
	dir := b.TempDir()
	o := gendump.Options{Dir: dir, Rows: 400_000, Format: "csv", Header: true}
	if _, err := gendump.Generate(o); err != nil {
		b.Fatal(err)
	}
	for _, t := range gendump.Tables(o) {
		file := filepath.Join(dir, gendump.DefaultDB+"."+t.Name+".00000.csv")
		st, err := os.Stat(file)
		if err != nil {
			b.Fatal(err)
		}
		tcols := gendumpColumns(b, filepath.Join(dir, gendump.DefaultDB+"."+t.Name+"-schema.sql"))
		for _, digest := range []bool{false, true} {
			name := t.Name + "/nodigest"
			if digest {
				name = t.Name + "/digest"
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(st.Size())
				b.ReportAllocs()
				ch := source.Chunk{Path: file, Format: source.FormatCSV, End: -1, StartLine: 1}
				var rows int
				// One writer for every pass, as a worker keeps one for a
				// shard: the steady state, not the buffers' first growth.
				var wr *sink.Writer
				var dg *rowDigester
				for b.Loop() {
					r, err := source.OpenChunk(ch, source.DefaultCSV(), 0, 0)
					if err != nil {
						b.Fatal(err)
					}
					if !digest {
						r.(source.TSVEncoder).EncodeTSV() // as worker.write does
					}
					for {
						row, err := r.Next()
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						if wr == nil {
							wr = (&sink.Target{}).NewWriter("j", "s", file, sink.TableRef{DB: "d", Name: t.Name}, r.Columns())
							dg = newRowDigester(checksum.DefaultRowHash, tcols, r.Columns())
						}
						var h uint64
						if digest {
							h = dg.hash(row.Values)
						}
						wr.Add(row, h)
						rows++
						if wr.Pending() >= 4<<20 {
							wr.Reset()
						}
					}
					r.Close()
					wr.Reset()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
			})
		}
	}
}
