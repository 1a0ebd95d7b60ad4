package source

import (
	"strings"
	"testing"
)

func TestParseCreateTable(t *testing.T) {
	stmt := "CREATE TABLE `t``x` (\n" +
		"  `id` bigint NOT NULL AUTO_INCREMENT,\n" +
		"  `a` varchar(20) DEFAULT 'KEY (x), UNIQUE',\n" +
		"  b int COMMENT 'PRIMARY KEY',\n" +
		"  `c d` text,\n" +
		"  e int UNIQUE,\n" +
		"  `p` int,\n" +
		"  g geometry NOT NULL,\n" +
		"  PRIMARY KEY (`id`),\n" +
		"  UNIQUE KEY `u_ab` (`a`,b),\n" +
		"  KEY `k_a` (`a`(10),`b` DESC) USING BTREE COMMENT 'first, second',\n" +
		"  INDEX (b),\n" +
		"  KEY (b, `a`),\n" +
		"  KEY USING HASH (`p`),\n" +
		"  FULLTEXT KEY `ft` (`c d`) /*!50100 WITH PARSER ngram */,\n" +
		"  SPATIAL INDEX (g),\n" +
		"  KEY `k_fk` (`p`, b),\n" +
		"  CONSTRAINT `fk1` FOREIGN KEY (`p`) REFERENCES `other` (`id`) ON DELETE CASCADE,\n" +
		"  CONSTRAINT chk CHECK (b > 0)\n" +
		") ENGINE=InnoDB /*!40100 DEFAULT CHARSET=utf8mb4 */"
	td, err := ParseCreateTable(stmt)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(td.Columns, ","); got != "id,a,b,c d,e,p,g" {
		t.Errorf("columns %s", got)
	}
	if err := td.Defer(); err != nil {
		t.Fatal(err)
	}
	type want struct {
		name, kind string
		deferred   bool
		def        string
	}
	wants := []want{
		{"e", IndexUnique, false, ""},
		{"PRIMARY", IndexPrimary, false, ""},
		{"u_ab", IndexUnique, false, "KEY `u_ab` (`a`,b)"},
		{"k_a", IndexKey, true, "KEY `k_a` (`a`(10),`b` DESC) USING BTREE COMMENT 'first, second'"},
		{"b", IndexKey, true, "KEY `b` (b)"},
		{"b_2", IndexKey, true, "KEY `b_2` (b, `a`)"},
		{"p", IndexKey, false, "KEY `p` USING HASH (`p`)"},
		{"ft", IndexFulltext, true, "FULLTEXT KEY `ft` (`c d`) /*!50100 WITH PARSER ngram */"},
		{"g", IndexSpatial, true, "SPATIAL KEY `g` (g)"},
		{"k_fk", IndexKey, true, "KEY `k_fk` (`p`, b)"},
	}
	if len(td.Indexes) != len(wants) {
		t.Fatalf("%d indexes: %+v", len(td.Indexes), td.Indexes)
	}
	for i, w := range wants {
		ix := td.Indexes[i]
		if ix.Name != w.name || ix.Kind != w.kind || ix.Deferred != w.deferred || (w.def != "" && ix.Def != w.def) {
			t.Errorf("index %d: %+v, want %+v", i, ix, w)
		}
	}
	if c := td.Indexes[3].Columns[0]; c.Name != "a" || c.Prefix != 10 {
		t.Errorf("prefix: %+v", c)
	}
	out := td.WithoutDeferred()
	for _, gone := range []string{"k_a", "FULLTEXT", "SPATIAL", "k_fk", "INDEX (b)"} {
		if strings.Contains(out, gone) {
			t.Errorf("stripped statement still has %s:\n%s", gone, out)
		}
	}
	for _, kept := range []string{"PRIMARY KEY (`id`)", "UNIQUE KEY `u_ab`", "KEY USING HASH (`p`)", "FOREIGN KEY", "CHECK (b > 0)", "DEFAULT CHARSET"} {
		if !strings.Contains(out, kept) {
			t.Errorf("stripped statement lost %s:\n%s", kept, out)
		}
	}
	// The stripped statement parses again, with nothing left to defer.
	td2, err := ParseCreateTable(out)
	if err != nil {
		t.Fatal(err)
	}
	td2.Defer()
	if d := td2.Deferred(); len(d) != 0 {
		t.Errorf("deferred after stripping: %+v", d)
	}
}

func TestDeferBadColumn(t *testing.T) {
	for _, tc := range []struct{ stmt, err string }{
		{"CREATE TABLE t (id int PRIMARY KEY, a int, KEY `k_x` (`a`, `nope`))", "key `k_x` names column `nope`"},
		{"CREATE TABLE t (id int, FULLTEXT (body))", "key `body` names column `body`"},
	} {
		td, err := ParseCreateTable(tc.stmt)
		if err != nil {
			t.Fatal(err)
		}
		if err := td.Defer(); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: err %v, want %q", tc.stmt, err, tc.err)
		}
	}
}

// A UNIQUE key without a name of its own takes its CONSTRAINT's name, as
// the server names it; without either it is named after its first column.
func TestParseConstraintNames(t *testing.T) {
	cases := []struct {
		stmt string
		want string
	}{
		{"CREATE TABLE t (a int, b int, CONSTRAINT uk UNIQUE (a, b))", "uk"},
		{"CREATE TABLE t (a int, CONSTRAINT `u k` UNIQUE KEY (a))", "u k"},
		{"CREATE TABLE t (a int, CONSTRAINT UNIQUE (a))", "a"},
		{"CREATE TABLE t (a int, CONSTRAINT pk PRIMARY KEY (a))", "PRIMARY"},
	}
	for _, c := range cases {
		td, err := ParseCreateTable(c.stmt)
		if err != nil {
			t.Fatalf("%s: %v", c.stmt, err)
		}
		var names []string
		for _, ix := range td.Indexes {
			names = append(names, ix.Name)
		}
		if got := strings.Join(names, " "); got != c.want {
			t.Errorf("%s: indexes %q, want %q", c.stmt, got, c.want)
		}
	}
}
