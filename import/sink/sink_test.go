package sink

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"testing"
	"time"

	"storm/import/source"
	"storm/internal/mariadbtest"
)

var testDB *mariadbtest.Server

func TestMain(m *testing.M) { os.Exit(mariadbtest.RunTests(m, &testDB)) }

// server is the database the sink tests write to: the private MariaDB, or
// a TiDB while TestTiDBSink (tidb_test.go) runs them again.
var server = func() Config {
	return Config{Host: testDB.Host, Port: testDB.Port, User: testDB.User, Password: testDB.Password}
}

func openTarget(t *testing.T, mode, dup string) *Target {
	t.Helper()
	cfg := server()
	cfg.Mode, cfg.OnDuplicate, cfg.RetryFor = mode, dup, 30*time.Second
	tg, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	if err := tg.EnsureMeta(t.Context()); err != nil {
		t.Fatal(err)
	}
	return tg
}

// newTable creates db.t fresh for one test.
func newTable(t *testing.T, tg *Target, ddl string) TableRef {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "_", "-", "_", " ", "_").Replace(t.Name()))
	ref := TableRef{DB: "sink_" + name, Name: "t"}
	if len(ref.DB) > 64 {
		// Both servers cap database names at 64 characters.
		ref.DB = fmt.Sprintf("%s_%08x", ref.DB[:55], crc32.ChecksumIEEE([]byte(ref.DB)))
	}
	for _, q := range []string{"DROP DATABASE IF EXISTS " + QuoteIdent(ref.DB), "CREATE DATABASE " + QuoteIdent(ref.DB),
		"CREATE TABLE " + ref.Quoted() + " " + ddl} {
		if _, err := tg.DB().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return ref
}

// containsAny: MariaDB and TiDB word the same refusal differently.
func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func str(s string) source.Value { return source.Value{Data: []byte(s)} }

var null = source.Value{Null: true}

func row(line int64, vals ...source.Value) source.Row { return source.Row{Values: vals, Line: line} }

// dump reads the table back as "v1|v2|..." lines ordered by the first column.
func dump(t *testing.T, db *sql.DB, ref TableRef) []string {
	t.Helper()
	rows, err := db.Query("SELECT * FROM " + ref.Quoted() + " ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		raw := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range raw {
			ptrs[i] = &raw[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(raw))
		for i, r := range raw {
			if r == nil {
				parts[i] = "NULL"
			} else {
				parts[i] = fmt.Sprintf("%q", string(r))
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out
}

// Every byte a dump can hold survives both write paths unchanged, NULL stays
// distinct from "", "NULL" and `\N`, and the checkpoint moves with the rows.
func TestWriteRoundTrip(t *testing.T) {
	tricky := []source.Row{
		row(1, str("1"), str("plain"), str("abc")),
		row(2, str("2"), str("tab\there\nnewline\r\nCRLF back\\slash \"dq\" 'sq'"), str("\x00\x01\\\t\n\r\x1a\xff'\"")),
		row(3, str("3"), null, null),
		row(4, str("4"), str(""), str("")),
		row(5, str("5"), str("NULL"), str(`\N`)),
		row(6, str("6"), str(`\N`), str("\\")),
		row(7, str("7"), str("中文 😀 ünïcödé"), str("\xe4\xb8")),
	}
	want := []string{
		`"1"|"plain"|"abc"`,
		`"2"|"tab\there\nnewline\r\nCRLF back\\slash \"dq\" 'sq'"|"\x00\x01\\\t\n\r\x1a\xff'\""`,
		`"3"|NULL|NULL`,
		`"4"|""|""`,
		`"5"|"NULL"|"\\N"`,
		`"6"|"\\N"|"\\"`,
		`"7"|"中文 😀 ünïcödé"|"\xe4\xb8"`,
	}
	for _, mode := range []string{"load", "insert"} {
		t.Run(mode, func(t *testing.T) {
			tg := openTarget(t, mode, "error")
			ref := newTable(t, tg, "(id INT PRIMARY KEY, s TEXT, b BLOB)")
			cp, err := tg.Acquire(t.Context(), "job", "s-"+mode, 10)
			if err != nil {
				t.Fatal(err)
			}
			w := tg.NewWriter("job", "s-"+mode, "f.csv", ref, []string{"id", "s", "b"})
			for _, r := range tricky {
				w.Add(r, uint64(r.Line))
			}
			to := cp
			to.NextOffset, to.NextLine, to.Rows, to.Finished = 100, 8, int64(len(tricky)), true
			res, err := w.Flush(t.Context(), cp, to)
			if err != nil {
				t.Fatal(err)
			}
			if res.LoadData != (mode == "load") || res.Rows != len(tricky) {
				t.Errorf("result %+v", res)
			}
			got := dump(t, tg.DB(), ref)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			again, err := tg.Acquire(t.Context(), "job", "s-"+mode, 11)
			if err != nil {
				t.Fatal(err)
			}
			if again.NextOffset != 100 || again.NextLine != 8 || again.Rows != 7 || !again.Finished || again.Epoch != 11 {
				t.Errorf("checkpoint after the batch: %+v", again)
			}
		})
	}
}

// A batch of an owner whose shard was re-claimed (a higher epoch acquired
// the checkpoint) commits nothing, on both paths; a stale claim can't
// acquire at all.
func TestFence(t *testing.T) {
	for _, mode := range []string{"load", "insert"} {
		t.Run(mode, func(t *testing.T) {
			tg := openTarget(t, mode, "error")
			ref := newTable(t, tg, "(id INT PRIMARY KEY)")
			shard := "fence-" + mode
			old, err := tg.Acquire(t.Context(), "job", shard, 5)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tg.Acquire(t.Context(), "job", shard, 7); err != nil {
				t.Fatal(err)
			}
			w := tg.NewWriter("job", shard, "f.csv", ref, nil)
			w.Add(row(1, str("1")), 0)
			to := old
			to.NextOffset, to.Rows = 10, 1
			if _, err := w.Flush(t.Context(), old, to); !errors.Is(err, ErrFenced) {
				t.Fatalf("stale owner's flush: %v, want ErrFenced", err)
			}
			if got := dump(t, tg.DB(), ref); len(got) != 0 {
				t.Fatalf("stale owner wrote %v", got)
			}
			if _, err := tg.Acquire(t.Context(), "job", shard, 6); !errors.Is(err, ErrFenced) {
				t.Fatalf("acquire with a stale epoch: %v, want ErrFenced", err)
			}
			if err := tg.Finish(t.Context(), old, to); !errors.Is(err, ErrFenced) {
				t.Fatalf("stale finish: %v, want ErrFenced", err)
			}
		})
	}
}

// A retried batch whose first commit landed (its answer lost) is not
// written twice: the checkpoint already holds its target position.
func TestRetryAfterLandedCommit(t *testing.T) {
	tg := openTarget(t, "load", "error")
	ref := newTable(t, tg, "(id INT PRIMARY KEY)")
	cp, err := tg.Acquire(t.Context(), "job", "landed", 3)
	if err != nil {
		t.Fatal(err)
	}
	to := cp
	to.NextOffset, to.Rows = 4, 2
	for try := 0; try < 2; try++ {
		w := tg.NewWriter("job", "landed", "f.csv", ref, nil)
		w.Add(row(1, str("1")), 0)
		w.Add(row(2, str("2")), 0)
		if _, err := w.Flush(t.Context(), cp, to); err != nil {
			t.Fatalf("try %d: %v", try, err)
		}
	}
	if got := dump(t, tg.DB(), ref); len(got) != 2 {
		t.Fatalf("rows %v", got)
	}
}

// A row the target refuses is named by file and line, and its batch leaves
// nothing behind; duplicates follow on-duplicate.
func TestRefusedRows(t *testing.T) {
	cases := []struct {
		name, mode, dup string
		rows            []source.Row
		wantLine        int64  // 0: no error
		wantReason      string // part of the reason
		want            []string
	}{
		{"bad int load", "load", "error", []source.Row{row(2, str("1"), str("a")), row(3, str("x1"), str("b"))}, 3, "Incorrect integer value|Incorrect int value", nil},
		{"bad int insert", "insert", "error", []source.Row{row(2, str("1"), str("a")), row(3, str("x1"), str("b"))}, 3, "Incorrect integer value|Incorrect int value", nil},
		{"too long load", "load", "error", []source.Row{row(7, str("1"), str("abcdefghijk"))}, 7, "too long", nil},
		{"empty into int", "load", "error", []source.Row{row(9, str(""), str("a"))}, 9, "Incorrect integer value|Incorrect int value", nil},
		{"duplicate error", "load", "error", []source.Row{row(2, str("1"), str("a")), row(3, str("1"), str("b"))}, 3, "Duplicate entry", nil},
		{"duplicate ignore", "load", "ignore", []source.Row{row(2, str("1"), str("a")), row(3, str("1"), str("b"))}, 0, "", []string{`"1"|"a"`}},
		{"duplicate ignore insert", "insert", "ignore", []source.Row{row(2, str("1"), str("a")), row(3, str("1"), str("b"))}, 0, "", []string{`"1"|"a"`}},
		{"bad value ignore", "load", "ignore", []source.Row{row(2, str("1"), str("a")), row(4, str("2"), str("abcdefghijk"))}, 4, "Data truncated|Data too long", nil},
		{"duplicate replace", "load", "replace", []source.Row{row(2, str("1"), str("a")), row(3, str("1"), str("b"))}, 0, "", []string{`"1"|"b"`}},
		{"duplicate replace insert", "insert", "replace", []source.Row{row(2, str("1"), str("a")), row(3, str("1"), str("b"))}, 0, "", []string{`"1"|"b"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := openTarget(t, c.mode, c.dup)
			ref := newTable(t, tg, "(id INT PRIMARY KEY, v VARCHAR(5))")
			shard := strings.ReplaceAll(c.name, " ", "-")
			cp, err := tg.Acquire(t.Context(), "job", shard, 1)
			if err != nil {
				t.Fatal(err)
			}
			w := tg.NewWriter("job", shard, "dump/db.t.0.csv", ref, nil)
			for _, r := range c.rows {
				w.Add(r, uint64(r.Line))
			}
			to := cp
			to.NextOffset, to.Rows = 50, int64(len(c.rows))
			_, err = w.Flush(t.Context(), cp, to)
			var re *RowError
			if c.wantLine == 0 {
				if err != nil {
					t.Fatal(err)
				}
			} else if !errors.As(err, &re) || re.Line != c.wantLine || !containsAny(re.Reason, strings.Split(c.wantReason, "|")) ||
				!strings.Contains(err.Error(), fmt.Sprintf("dump/db.t.0.csv:%d:", c.wantLine)) {
				t.Fatalf("error %v, want a RowError at line %d with %q", err, c.wantLine, c.wantReason)
			}
			if got := dump(t, tg.DB(), ref); strings.Join(got, ";") != strings.Join(c.want, ";") {
				t.Fatalf("rows %v, want %v", got, c.want)
			}
			now, err := tg.Acquire(t.Context(), "job", shard, 2)
			if err != nil {
				t.Fatal(err)
			}
			wantOffset := int64(50)
			if c.wantLine != 0 {
				wantOffset = 0
			}
			if now.NextOffset != wantOffset {
				t.Fatalf("checkpoint offset %d, want %d", now.NextOffset, wantOffset)
			}
		})
	}
}

// The database restarting under a batch is a transient error: the batch is
// retried with backoff and lands once.
func TestRetryAcrossRestart(t *testing.T) {
	tg := openTarget(t, "load", "error")
	ref := newTable(t, tg, "(id INT PRIMARY KEY)")
	cp, err := tg.Acquire(t.Context(), "job", "restart", 1)
	if err != nil {
		t.Fatal(err)
	}
	testDB.Kill()
	restarted := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		restarted <- testDB.Restart(context.Background(), 0)
	}()
	w := tg.NewWriter("job", "restart", "f.csv", ref, nil)
	for i := 1; i <= 100; i++ {
		w.Add(row(int64(i), str(fmt.Sprint(i))), 0)
	}
	to := cp
	to.NextOffset, to.Rows = 500, 100
	if _, err := w.Flush(t.Context(), cp, to); err != nil {
		t.Fatalf("flush across a restart: %v", err)
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if got := dump(t, tg.DB(), ref); len(got) != 100 {
		t.Fatalf("%d rows after the restart, want 100", len(got))
	}
}

// Within import.max-errors, refused rows are recorded with file, line,
// column and reason, and the checkpoint counts and digests only the rows
// that went in; past it the shard fails.
func TestMaxErrors(t *testing.T) {
	for _, c := range []struct {
		name      string
		maxErrors int64
		wantErr   bool
	}{{"within", 5, false}, {"past", 1, true}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := server()
			cfg.Mode, cfg.OnDuplicate, cfg.MaxErrors = "load", "error", c.maxErrors
			tg, err := Open(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			if err := tg.EnsureMeta(t.Context()); err != nil {
				t.Fatal(err)
			}
			ref := newTable(t, tg, "(id INT PRIMARY KEY, v VARCHAR(3))")
			job := "maxerr-" + c.name
			cp, err := tg.Acquire(t.Context(), job, "s", 1)
			if err != nil {
				t.Fatal(err)
			}
			w := tg.NewWriter(job, "s", "d/db.t.0.csv", ref, nil)
			w.Add(row(2, str("1"), str("ok")), 0x10)
			w.Add(row(3, str("2"), str("toolong")), 0x20)
			w.Add(row(4, str("x"), str("ok")), 0x40)
			w.Add(row(5, str("4"), str("ok")), 0x80)
			to := cp
			to.NextOffset = 99
			res, err := w.Flush(t.Context(), cp, to)
			if c.wantErr {
				var re *RowError
				if !errors.As(err, &re) || re.Line != 3 || !strings.Contains(re.Reason, "max-errors") {
					t.Fatalf("error %v, want the max-errors RowError at line 3", err)
				}
				if got := dump(t, tg.DB(), ref); len(got) != 0 {
					t.Fatalf("rows %v after a failed batch", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Rejected != 2 || res.Checkpoint.Rows != 2 || res.Checkpoint.DigestCount != 2 || res.Checkpoint.DigestXOR != 0x90 {
				t.Fatalf("result %+v", res)
			}
			if got := dump(t, tg.DB(), ref); strings.Join(got, ";") != `"1"|"ok";"4"|"ok"` {
				t.Fatalf("rows %v", got)
			}
			rows, err := tg.DB().Query("SELECT file, line, col, reason FROM "+MetaDB+".rejected WHERE job = ? ORDER BY line", job)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var file, col, reason string
				var line int64
				if err := rows.Scan(&file, &line, &col, &reason); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s:%d:%s", file, line, col))
			}
			if strings.Join(got, " ") != "d/db.t.0.csv:3:v d/db.t.0.csv:4:id" {
				t.Fatalf("rejected %v", got)
			}
			now, err := tg.Acquire(t.Context(), job, "s", 2)
			if err != nil || now.Rows != 2 || now.DigestXOR != 0x90 || now.NextOffset != 99 {
				t.Fatalf("checkpoint %+v, %v", now, err)
			}
		})
	}
}

// Text goes into a column of another character set converted, the same on
// both write paths (LOAD DATA's CHARACTER SET utf8mb4, INSERT's utf8mb4
// connection): "é" is E9 in latin1, and a character latin1 lacks is
// refused, not stored as UTF-8 bytes. Binary columns keep the bytes.
func TestCharsetConversion(t *testing.T) {
	for _, mode := range []string{"load", "insert"} {
		t.Run(mode, func(t *testing.T) {
			tg := openTarget(t, mode, "error")
			ref := newTable(t, tg, "(id INT PRIMARY KEY, l VARCHAR(8) CHARACTER SET latin1, b VARBINARY(8))")
			cp, err := tg.Acquire(t.Context(), "job", "cs-"+mode, 1)
			if err != nil {
				t.Fatal(err)
			}
			w := tg.NewWriter("job", "cs-"+mode, "cs.csv", ref, nil)
			w.Add(row(1, str("1"), str("é"), str("é")), 0)
			to := cp
			to.NextOffset, to.Rows = 10, 1
			if _, err := w.Flush(t.Context(), cp, to); err != nil {
				t.Fatal(err)
			}
			var l, b string
			if err := tg.DB().QueryRow("SELECT HEX(l), HEX(b) FROM "+ref.Quoted()).Scan(&l, &b); err != nil {
				t.Fatal(err)
			}
			// TiDB keeps latin1 columns in UTF-8 (its latin1 is a label), on
			// both paths alike.
			wantL := "E9"
			if tg.IsTiDB() {
				wantL = "C3A9"
			}
			if l != wantL || b != "C3A9" {
				t.Errorf("latin1 column holds %s, binary %s; want %s and C3A9", l, b, wantL)
			}
			if tg.IsTiDB() {
				return
			}

			w = tg.NewWriter("job", "cs-"+mode, "cs.csv", ref, nil)
			w.Add(row(2, str("2"), str("中"), str("")), 0)
			from := to
			to.NextOffset, to.Rows = 20, 2
			_, err = w.Flush(t.Context(), from, to)
			var re *RowError
			if !errors.As(err, &re) || re.Line != 2 {
				t.Fatalf("a character latin1 lacks: %v, want a RowError at line 2", err)
			}
		})
	}
}

// A writer that takes over a flushed writer's buffers (as a worker does
// from shard to shard) keeps their room and none of their rows, whatever
// its table and columns.
func TestWriterFromReusesBuffers(t *testing.T) {
	tg := openTarget(t, "load", "error")
	first := newTable(t, tg, "(id INT PRIMARY KEY, s TEXT)")
	second := TableRef{DB: first.DB, Name: "u"}
	if _, err := tg.DB().Exec("CREATE TABLE " + second.Quoted() + " (k INT PRIMARY KEY, a TEXT, b TEXT)"); err != nil {
		t.Fatal(err)
	}
	flush := func(w *Writer, shard string, rows int64) {
		t.Helper()
		cp, err := tg.Acquire(t.Context(), "job", shard, 1)
		if err != nil {
			t.Fatal(err)
		}
		to := cp
		to.NextOffset, to.NextLine, to.Rows, to.Finished = 100, rows+1, rows, true
		if _, err := w.Flush(t.Context(), cp, to); err != nil {
			t.Fatal(err)
		}
	}
	w := tg.NewWriter("job", "s1", "a.csv", first, []string{"id", "s"})
	w.Reserve(1 << 16)
	for i := range 100 {
		w.Add(row(int64(i+1), str(fmt.Sprint(i)), str(strings.Repeat("x", i))), 0)
	}
	flush(w, "s1", 100)
	room := cap(w.tsv)
	if room < 1<<16 {
		t.Fatalf("Reserve(64 KiB): room for %d bytes", room)
	}

	next := tg.NewWriterFrom(w, "job", "s2", "b.csv", second, []string{"k", "a", "b"})
	if cap(next.tsv) != room || len(next.tsv) != 0 || next.PendingRows() != 0 {
		t.Fatalf("taken over: %d of %d bytes, %d rows; want 0 of %d, 0", len(next.tsv), cap(next.tsv), next.PendingRows(), room)
	}
	if w.tsv != nil || w.rows != nil {
		t.Fatal("the old writer still holds its buffers")
	}
	next.Add(row(1, str("7"), str("p"), null), 0)
	next.Add(row(2, str("8"), str(""), str("q\tr")), 0)
	flush(next, "s2", 2)
	want := []string{`"7"|"p"|NULL`, `"8"|""|"q\tr"`}
	if got := dump(t, tg.DB(), second); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := dump(t, tg.DB(), first); len(got) != 100 {
		t.Errorf("first table: %d rows, want 100", len(got))
	}
}
