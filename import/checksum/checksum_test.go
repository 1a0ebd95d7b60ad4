package checksum

import (
	"testing"

	"storm/import/source"
)

func val(s string) source.Value { return source.Value{Data: []byte(s)} }

var null = source.Value{Null: true}

func TestHashRawDistinguishes(t *testing.T) {
	for _, rh := range RowHashes {
		h := NewRowHasher(rh, nil)
		rows := map[string][]source.Value{
			"null":       {null},
			"empty":      {val("")},
			"NULL text":  {val("NULL")},
			`\N text`:    {val(`\N`)},
			"ab|c":       {val("ab"), val("c")},
			"a|bc":       {val("a"), val("bc")},
			"two nulls":  {null, null},
			"null|empty": {null, val("")},
		}
		seen := map[uint64]string{}
		for name, r := range rows {
			s := h.HashRaw(r)
			if other, dup := seen[s]; dup {
				t.Errorf("%s: %q and %q hash equal", rh, name, other)
			}
			seen[s] = name
		}
	}
}

func TestDigestMergeIsOrderFree(t *testing.T) {
	for _, rh := range RowHashes {
		h := NewRowHasher(rh, nil)
		var whole, a, b Digest
		for i, s := range []string{"1", "2", "3", "4", "5"} {
			x := h.HashRaw([]source.Value{val(s)})
			whole.Add(x)
			if i%2 == 0 {
				a.Add(x)
			} else {
				b.Add(x)
			}
		}
		b.Merge(a)
		if b != whole {
			t.Fatalf("%s: merged %+v, whole %+v", rh, b, whole)
		}
		if x, err := ParseHex(whole.Hex()); err != nil || x != whole.XOR {
			t.Fatalf("%s: hex round trip: %v %v", rh, x, err)
		}
	}
}
