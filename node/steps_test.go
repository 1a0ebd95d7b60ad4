package node

import (
	"strings"
	"testing"

	"storm/import/source"
)

// sameIndex compares a recorded definition with what STATISTICS shows.
func TestSameIndex(t *testing.T) {
	col := func(name string, prefix int) source.IndexColumn {
		return source.IndexColumn{Name: name, Prefix: prefix}
	}
	key := source.Index{Name: "k", Kind: source.IndexKey, Columns: []source.IndexColumn{col("a", 0), col("b", 10)}}
	for _, tc := range []struct {
		name string
		ix   source.Index
		got  indexShape
		want string // "" when the same
	}{
		{"same", key, indexShape{typ: "BTREE", columns: []source.IndexColumn{col("A", 0), col("b", 10)}}, ""},
		{"server's own prefix on a BLOB", key, indexShape{typ: "BTREE", columns: []source.IndexColumn{col("a", 3072), col("b", 10)}}, ""},
		{"other prefix", key, indexShape{typ: "BTREE", columns: []source.IndexColumn{col("a", 0), col("b", 20)}}, "key part 2"},
		{"other column", key, indexShape{typ: "BTREE", columns: []source.IndexColumn{col("a", 0), col("c", 10)}}, "key part 2"},
		{"fewer parts", key, indexShape{typ: "BTREE", columns: []source.IndexColumn{col("a", 0)}}, "1 key part(s), want 2"},
		{"unique", key, indexShape{unique: true, typ: "BTREE", columns: []source.IndexColumn{col("a", 0), col("b", 10)}}, "is unique, want non-unique"},
		{"fulltext", source.Index{Name: "f", Kind: source.IndexFulltext, Columns: []source.IndexColumn{col("t", 0)}},
			indexShape{typ: "BTREE", columns: []source.IndexColumn{col("t", 0)}}, "type BTREE, want FULLTEXT"},
	} {
		got := sameIndex(tc.ix, &tc.got)
		if (got == "") != (tc.want == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
