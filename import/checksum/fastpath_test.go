package checksum

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// The fast paths (values already canonical are appended as they are) must
// give exactly what the full parse gives. A leading space keeps a value off
// the fast path, and the full parse trims it.
func TestFastPathsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "0123456789"[r.IntN(10)]
			if r.IntN(4) == 0 {
				b[i] = "09"[r.IntN(2)]
			}
		}
		return string(b)
	}
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	for range 200_000 {
		scale := r.IntN(7)
		v := pick("", "-", "+", "-") + digits(r.IntN(22)) + pick("", ".", ".", ".") + digits(r.IntN(9)) + pick("", "", "", "e1", " ")
		a, errA := appendDecimal([]byte("x"), []byte(v), scale, "n")
		b, errB := appendDecimal([]byte("x"), []byte(" "+v), scale, "n")
		if (errA == nil) != (errB == nil) || !bytes.Equal(a, b) {
			t.Fatalf("decimal %q scale %d: fast %q %v, full %q %v", v, scale, a, errA, b, errB)
		}
		if canonicalDecimal([]byte(v), scale) && string(a) != "x"+v {
			t.Fatalf("decimal %q scale %d is canonical but becomes %q", v, scale, a)
		}
	}
	for range 200_000 {
		scale := r.IntN(7)
		kind := pick("date", "datetime")
		s := prepare(mariaCol(kind, kind, scale))
		v := digits(4) + pick("-", "-", "/") + digits(2) + "-" + digits(2)
		if kind == "datetime" || r.IntN(3) == 0 {
			v += pick(" ", " ", "T") + digits(2) + ":" + digits(2) + ":" + digits(2)
			if n := r.IntN(8); n > 0 {
				v += "." + digits(n)
			}
		}
		a, errA := s.appendDateTime([]byte("x"), []byte(v))
		b, errB := s.appendDateTime([]byte("x"), []byte(" "+v))
		if (errA == nil) != (errB == nil) || !bytes.Equal(a, b) {
			t.Fatalf("%s(%d) %q: fast %q %v, full %q %v", kind, scale, v, a, errA, b, errB)
		}
	}
	for range 200_000 {
		scale := r.IntN(7)
		s := prepare(mariaCol("time", "time", scale))
		v := digits(2) + pick(":", ":", ".") + digits(2) + ":" + digits(2)
		if n := r.IntN(8); n > 0 {
			v += "." + digits(n)
		}
		a, errA := s.appendTime([]byte("x"), []byte(v))
		b, errB := s.appendTime([]byte("x"), []byte(" "+v))
		if (errA == nil) != (errB == nil) || !bytes.Equal(a, b) {
			t.Fatalf("time(%d) %q: fast %q %v, full %q %v", scale, v, a, errA, b, errB)
		}
	}
	for y := 0; y < 10000; y++ {
		for _, v := range []string{fmt.Sprintf("%04d", y), fmt.Sprint(y)} {
			a, errA := appendYear([]byte("x"), []byte(v))
			b, errB := appendYear([]byte("x"), []byte(" "+v))
			if (errA == nil) != (errB == nil) || !bytes.Equal(a, b) {
				t.Fatalf("year %q: fast %q %v, full %q %v", v, a, errA, b, errB)
			}
		}
	}
}

// A row's hash is the row hash of its fields' Canonical terms, whether the
// hasher gathers them in its buffer or streams a long value.
func TestHashStreamsLongValues(t *testing.T) {
	cols := []Column{col("int", "int(11)", 0), col("blob", "blob", 0), col("varchar", "varchar(9)", 0), col("text", "text", 0)}
	long := bytes.Repeat([]byte("ab"), streamAbove)
	for _, rh := range RowHashes {
		h := NewRowHasher(rh, cols)
		for _, row := range [][]Field{
			{text("7"), {Data: long}, text("x"), {Null: true}},
			{text("7"), text("short"), text("x"), {Data: long}},
			{text("-0"), {Data: long}, {Null: true}, {Data: long[:streamAbove+1]}},
			{text("1"), text(""), text(""), text("")},
		} {
			want := rowHash(rh, rowString(t, cols, row))
			got, err := h.Hash(row)
			if err != nil || got != want {
				t.Errorf("%s: row %v: %016x %v, want %016x", rh, row[0], got, err, want)
			}
		}
	}
}
