package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storm/import/checksum"
	"storm/import/sink"
	"storm/import/source"
	"storm/internal/gendump"
	"storm/meta"
)

// verifyEnv is a node with a target on the test MariaDB, for the verify
// ranges' digests.
type verifyEnv struct {
	t   *testing.T
	ctx context.Context
	n   *Node
	db  string
	log *logBuffer
}

func newVerifyEnv(t *testing.T, db string, rh checksum.RowHash) *verifyEnv {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	tg, err := sink.Open(ctx, sink.Config{Host: testDB.Host, Port: testDB.Port, User: testDB.User, Password: testDB.Password, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	e := &verifyEnv{t: t, ctx: ctx, db: db, log: &logBuffer{}}
	e.n = &Node{target: tg, dcols: map[string][]checksum.Column{}, rowHash: rh, log: slog.New(slog.NewTextHandler(e.log, nil))}
	e.exec("DROP DATABASE IF EXISTS `" + db + "`")
	e.exec("CREATE DATABASE `" + db + "`")
	return e
}

func (e *verifyEnv) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.n.target.DB().ExecContext(e.ctx, q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// load inserts source rows into a table (as the sink does: values as
// _binary strings) and returns the source digest, as the import computes
// it, and the digest columns.
func (e *verifyEnv) load(table string, cols []string, rows [][]source.Value) (checksum.Digest, []string) {
	e.t.Helper()
	tcols, err := e.n.digestColumns(e.ctx, e.db, table)
	if err != nil {
		e.t.Fatal(err)
	}
	dg := newRowDigester(e.n.rowHash, tcols, cols)
	var d checksum.Digest
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = sink.QuoteIdent(c)
	}
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	for i := 0; i < len(rows); i += 200 {
		batch := rows[i:min(i+200, len(rows))]
		var args []any
		for _, row := range batch {
			d.Add(dg.hash(row))
			for _, v := range row {
				if v.Null {
					args = append(args, nil)
				} else {
					args = append(args, v.Data)
				}
			}
		}
		e.exec("INSERT INTO "+sink.TableRef{DB: e.db, Name: table}.Quoted()+" ("+strings.Join(names, ",")+") VALUES "+
			strings.TrimSuffix(strings.Repeat(tuple+",", len(batch)), ","), args...)
	}
	return d, dg.cols
}

// digests returns a range's digest computed by the server, read back, and
// as the verify phase computes it (rangeDigest).
func (e *verifyEnv) digests(r meta.VerifyRange) (server checksum.Digest, serverErr error, back, chosen checksum.Digest) {
	e.t.Helper()
	cols, err := e.n.rangeColumns(e.ctx, r)
	if err != nil {
		e.t.Fatal(err)
	}
	expr, serverErr := e.n.rowHashSQL(cols)
	if serverErr == nil {
		if server, err = serverDigest(e.ctx, e.n.target.DB(), r, expr); err != nil {
			e.t.Fatal(err)
		}
	}
	if back, err = readBack(e.ctx, e.n.target.DB(), r, e.n.rowHash, cols); err != nil {
		e.t.Fatal(err)
	}
	if chosen, err = e.n.rangeDigest(e.ctx, r); err != nil {
		e.t.Fatal(err)
	}
	return server, serverErr, back, chosen
}

// The gendump tables (every type the bench loads) are digested by the
// server, in one range and in several, to the digest the import computes
// from the source, and so are they when read back; a table with a FLOAT
// column is read back; a value swapped between two rows is caught.
func TestRangeDigest(t *testing.T) {
	for _, rh := range checksum.RowHashes {
		t.Run(rh.Name(), func(t *testing.T) { testRangeDigest(t, rh) })
	}
}

func testRangeDigest(t *testing.T, rh checksum.RowHash) {
	e := newVerifyEnv(t, fmt.Sprintf("node_range_digest_%d", int(rh)), rh)
	gen := gendump.Options{Dir: filepath.Join(t.TempDir(), "dump"), DB: e.db, Rows: 4000, Seed: 3, Format: "csv", Header: true}
	if _, err := gendump.Generate(gen); err != nil {
		t.Fatal(err)
	}
	for _, ti := range gendump.Tables(gen) {
		schema, err := os.ReadFile(filepath.Join(gen.Dir, gen.DB+"."+ti.Name+"-schema.sql"))
		if err != nil {
			t.Fatal(err)
		}
		e.exec("USE `" + e.db + "`")
		if _, err := e.n.target.DB().ExecContext(e.ctx, "CREATE TABLE `"+e.db+"`.`"+ti.Name+"`"+
			strings.TrimPrefix(string(schema), "CREATE TABLE `"+ti.Name+"`")); err != nil {
			t.Fatal(err)
		}
		cols, rows := readCSV(t, filepath.Join(gen.Dir, gen.DB+"."+ti.Name+".00000.csv"))
		want, dcols := e.load(ti.Name, cols, rows)
		whole := meta.VerifyRange{ID: ti.Name, DB: e.db, Table: ti.Name, Columns: dcols}
		server, serverErr, back, chosen := e.digests(whole)
		if serverErr != nil || server != want || back != want || chosen != want {
			t.Errorf("%s: source %+v; server %+v (%v), read back %+v, rangeDigest %+v", ti.Name, want, server, serverErr, back, chosen)
		}
		if len(ti.PK) == 0 {
			continue
		}
		// Three ranges of the key, merged.
		var merged checksum.Digest
		lo, hi := int64(len(rows)/3), int64(2*len(rows)/3)
		for _, b := range [][2]*int64{{nil, &lo}, {&lo, &hi}, {&hi, nil}} {
			r := whole
			r.PK, r.Lo, r.Hi = ti.PK[0], b[0], b[1]
			server, serverErr, back, _ := e.digests(r)
			if serverErr != nil || server != back {
				t.Errorf("%s [%v, %v): server %+v (%v), read back %+v", ti.Name, b[0], b[1], server, serverErr, back)
			}
			merged.Merge(server)
		}
		if merged != want {
			t.Errorf("%s: three ranges merge to %+v, source %+v", ti.Name, merged, want)
		}
	}

	// Two customers swap their countries: same rows, same lengths, same
	// column values, other rows. The digest must change.
	var a, b int64
	var ca, cb string
	if err := e.n.target.DB().QueryRowContext(e.ctx, "SELECT x.id, y.id, x.country, y.country FROM `"+e.db+"`.customers x JOIN `"+e.db+
		"`.customers y ON y.id > x.id AND x.country <> y.country ORDER BY x.id, y.id LIMIT 1").Scan(&a, &b, &ca, &cb); err != nil {
		t.Fatal(err)
	}
	tcols, _ := e.n.digestColumns(e.ctx, e.db, "customers")
	var names []string
	for _, c := range tcols {
		names = append(names, c.Name)
	}
	r := meta.VerifyRange{ID: "customers", DB: e.db, Table: "customers", Columns: names}
	before, _, _, _ := e.digests(r)
	e.exec("UPDATE `"+e.db+"`.customers SET country = ? WHERE id = ?", cb, a)
	e.exec("UPDATE `"+e.db+"`.customers SET country = ? WHERE id = ?", ca, b)
	server, _, back, chosen := e.digests(r)
	if server.Count != before.Count || server.XOR == before.XOR || back != server || chosen != server {
		t.Errorf("customers %d and %d swapped countries: before %+v; server %+v, read back %+v, rangeDigest %+v", a, b, before, server, back, chosen)
	}

	// A FLOAT column: read back, still to the source's digest.
	e.exec("CREATE TABLE `" + e.db + "`.fl (id int PRIMARY KEY, f float, v varchar(10))")
	var rows [][]source.Value
	for i, f := range []string{"1.5", "1234567", "-0", "3.4e38", "0.1", "1e-30"} {
		rows = append(rows, []source.Value{{Data: fmt.Appendf(nil, "%d", i+1)}, {Data: []byte(f)}, {Null: i%2 == 0, Data: []byte("x")}})
	}
	want, dcols := e.load("fl", []string{"id", "f", "v"}, rows)
	_, serverErr, back, chosen := e.digests(meta.VerifyRange{ID: "fl", DB: e.db, Table: "fl", Columns: dcols})
	var ue *checksum.UnsupportedError
	if !errors.As(serverErr, &ue) || ue.Column != "f" {
		t.Errorf("fl: the server's row hash: %v, want the FLOAT column refused", serverErr)
	}
	if back != want || chosen != want {
		t.Errorf("fl: source %+v, read back %+v, rangeDigest %+v", want, back, chosen)
	}
	// The server digested every range it could: it never failed and left
	// one to the read-back.
	if strings.Contains(e.log.b.String(), "reading it back") {
		t.Errorf("a server digest failed:\n%s", e.log.b.String())
	}
}

// readCSV reads a gendump CSV file's columns and rows.
func readCSV(t *testing.T, file string) ([]string, [][]source.Value) {
	t.Helper()
	r, err := source.OpenChunk(source.Chunk{Path: file, Format: source.FormatCSV, End: -1, StartLine: 1}, source.DefaultCSV(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rows [][]source.Value
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		vals := make([]source.Value, len(row.Values))
		for i, v := range row.Values {
			vals[i] = source.Value{Null: v.Null, Data: bytes.Clone(v.Data)}
		}
		rows = append(rows, vals)
	}
	return r.Columns(), rows
}
