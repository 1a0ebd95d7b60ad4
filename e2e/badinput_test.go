package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storm/internal/gendump"
	"storm/meta"
)

// Bad input fails the job with an error that names the file, the line and
// the reason; a target or etcd that can't be reached at start exits 2
// naming the address.
func TestE2EBadInput(t *testing.T) {
	closed := closedPort(t)
	cases := []struct {
		name     string
		mutate   func(t *testing.T, dir, csv string) (file string) // returns the file the error must name
		config   map[string]string
		wantCode int
		want     []string // in the barrier's reason (exit 1) or the node's log (exit 2)
	}{
		{"unclosed quote", func(t *testing.T, dir, csv string) string {
			appendFile(t, csv, "999999,\"never closed\n")
			return csv
		}, nil, 1, []string{"unclosed quoted field"}},
		{"wrong column count", func(t *testing.T, dir, csv string) string {
			replaceLine(t, csv, 3, "77,just two")
			return csv + ":3"
		}, nil, 1, []string{"row has 2 fields", "expects 9"}},
		// verify.mode = count: rows go to LOAD DATA as the reader encodes
		// them, never decoded (node/worker.go); the errors are the same.
		{"wrong column count, not hashed", func(t *testing.T, dir, csv string) string {
			replaceLine(t, csv, 3, "77,just two")
			return csv + ":3"
		}, map[string]string{"verify.mode": `"count"`}, 1, []string{"row has 2 fields", "expects 9"}},
		{"not a number", func(t *testing.T, dir, csv string) string {
			replaceField(t, csv, 4, 4, "two hundred") // age, an INT
			return csv + ":4"
		}, nil, 1, []string{"age"}},
		{"not a number, not hashed", func(t *testing.T, dir, csv string) string {
			replaceField(t, csv, 4, 4, "two hundred")
			return csv + ":4"
		}, map[string]string{"verify.mode": `"count"`}, 1, []string{"age"}},
		{"schema does not parse", func(t *testing.T, dir, csv string) string {
			schema := schemaFile(dir, "customers")
			writeFile(t, schema, []byte("CREATE TABLE customers (id BIGINT PRIMARY KEY,,);\n"))
			return schema
		}, nil, 1, []string{"create table", "syntax"}},
		{"data file without schema", func(t *testing.T, dir, csv string) string {
			ghost := filepath.Join(dir, filepath.Base(strings.Replace(csv, ".customers.", ".ghost.", 1)))
			writeFile(t, ghost, []byte("id\n1\n"))
			return ghost
		}, nil, 1, []string{"has no schema file"}},
		{"a data file storm cannot read", func(t *testing.T, dir, csv string) string {
			other := strings.TrimSuffix(csv, ".csv") + ".json"
			writeFile(t, other, []byte(`{"id": 1}`+"\n"))
			return filepath.Base(other)
		}, nil, 1, []string{"format .json is not supported", `type = "ignore"`}},
		{"csv header auto, one wrong name", func(t *testing.T, dir, csv string) string {
			replaceField(t, csv, 1, 2, "nmae")
			return csv + ":1"
		}, map[string]string{"source.csv.header": `"auto"`}, 1, []string{`"nmae" do not`}},
		{"truncated gzip", func(t *testing.T, dir, csv string) string {
			data, err := os.ReadFile(csv)
			if err != nil {
				t.Fatal(err)
			}
			var gz bytes.Buffer
			w := gzip.NewWriter(&gz)
			w.Write(data)
			w.Close()
			if err := os.Remove(csv); err != nil {
				t.Fatal(err)
			}
			writeFile(t, csv+".gz", gz.Bytes()[:gz.Len()/2])
			return csv + ".gz"
		}, nil, 1, []string{"truncated or corrupt gzip"}},
		{"database unreachable", nil, map[string]string{"target.port": fmt.Sprint(closed), "node.start-timeout": `"2s"`},
			2, []string{fmt.Sprintf("127.0.0.1:%d", closed), "unreachable"}},
		{"etcd unreachable", nil, map[string]string{"etcd.endpoints": fmt.Sprintf(`["http://127.0.0.1:%d"]`, closed), "node.start-timeout": `"2s"`},
			2, []string{fmt.Sprintf("127.0.0.1:%d", closed), "unreachable"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, gendump.Options{Rows: 2_000, Format: "csv", Header: true, Tables: []string{"customers"}})
			files, _ := filepath.Glob(filepath.Join(e.gen.Dir, "*.customers.*.csv"))
			if len(files) != 1 {
				t.Fatalf("customers files %v", files)
			}
			var file string
			if c.mutate != nil {
				file = c.mutate(t, e.gen.Dir, files[0])
			}
			p := e.node("n1", e.config(c.config))
			if code := p.wait(t, time.Minute); code != c.wantCode {
				t.Fatalf("exit %d, want %d", code, c.wantCode)
			}
			var text string
			if c.wantCode == 2 {
				text = p.log()
			} else {
				b := e.barrier()
				if b == nil || b.Status != meta.StatusFailed {
					t.Fatalf("barrier %+v", b)
				}
				text = b.Reason
			}
			for _, w := range append(c.want, file) {
				if !strings.Contains(text, w) {
					t.Errorf("%q not named in:\n%s", w, tail(text, 5))
				}
			}
		})
	}
}

func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func schemaFile(dir, table string) string {
	m, _ := filepath.Glob(filepath.Join(dir, "*."+table+"-schema.sql"))
	if len(m) == 0 {
		return ""
	}
	return m[0]
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// replaceLine replaces line n (1-based) of a file.
func replaceLine(t *testing.T, path string, n int, text string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	lines[n-1] = text + "\n"
	writeFile(t, path, []byte(strings.Join(lines, "")))
}

// replaceField replaces field i (0-based) of line n (1-based) of a CSV file
// whose fields hold no separator.
func replaceField(t *testing.T, path string, n, i int, text string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	fields := strings.Split(strings.TrimSuffix(lines[n-1], "\n"), ",")
	fields[i] = text
	replaceLine(t, path, n, strings.Join(fields, ","))
}
