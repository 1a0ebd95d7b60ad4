package source

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// Value.Plain is a promise: a field marked plain holds none of the bytes a
// LOAD DATA text escapes. And ordinary fields are marked, so that the
// writer's fast path is taken.
func TestCSVPlainFields(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	alphabet := []byte("ab,\"\\\n\r\t\x00\x1aNx|';")
	for _, cfg := range fuzzDialects {
		for round := range 300 {
			data := make([]byte, r.IntN(200))
			for i := range data {
				data[i] = alphabet[r.IntN(len(alphabet))]
			}
			if round%3 == 0 {
				data = []byte("id,name\n1,\"plain, quoted\"\n2,plain\n3,\"a\\tb\"\n")
			}
			p := writeFile(t, t.TempDir(), "d.t.csv", data)
			rd, err := OpenChunk(wholeChunk(p, FormatCSV), cfg, 0, 0)
			if err != nil {
				if round%3 == 0 {
					t.Fatal(err)
				}
				continue // random bytes: a header that does not parse
			}
			plain := 0
			for {
				row, err := rd.Next()
				if err != nil {
					if err != io.EOF && round%3 == 0 {
						t.Fatalf("%q: %v", data, err)
					}
					break
				}
				for _, v := range row.Values {
					if v.Plain && bytes.ContainsFunc(v.Data, func(c rune) bool { return c < 0x80 && tsvSpecial[c] }) {
						t.Fatalf("dialect %+v, %q: field %q is marked plain", cfg, data, v.Data)
					}
					if v.Plain {
						plain++
					}
				}
			}
			rd.Close()
			if round%3 == 0 && cfg.Separator == "," && cfg.Delimiter == `"` && plain < 4 {
				t.Errorf("dialect %+v: only %d plain fields in %q", cfg, plain, data)
			}
		}
	}
}
