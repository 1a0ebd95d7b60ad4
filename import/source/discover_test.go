package source

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"metadata":                       "Started dump at: ...",
		"shop-schema-create.sql":         "CREATE DATABASE `shop`;",
		"shop.users-schema.sql":          "CREATE TABLE users (id int);",
		"shop.users.00000.sql":           "INSERT INTO users VALUES (1);",
		"shop.users.00001.sql.gz":        "x",
		"shop.users.00002.csv.zst":       "x",
		"shop.orders.csv":                "1,2\n",
		"shop.orders.00000000.csv":       "3,4\n",
		"shop.empty-schema.sql":          "CREATE TABLE empty (id int);",
		"shop.v-schema-view.sql":         "CREATE VIEW v AS SELECT 1;",
		"shop.v-schema.sql":              "CREATE TABLE v (x int);",
		"shop.users-schema-triggers.sql": "",
		"shop.users-schema-post.sql":     "",
		"shop.seq-schema-sequence.sql":   "",
		"other.t.00001.SQL":              "",
		"readme.txt":                     "",
		"noext":                          "",
		".hidden.t.sql":                  "",
	}
	for name, data := range files {
		writeFile(t, dir, name, []byte(data))
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.t.sql"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	j := func(name string) string { return filepath.Join(dir, name) }
	wantDBs := []Database{{Name: "other"}, {Name: "shop", SchemaFile: j("shop-schema-create.sql")}}
	if !reflect.DeepEqual(l.Databases, wantDBs) {
		t.Errorf("databases %+v\nwant %+v", l.Databases, wantDBs)
	}
	wantTables := []Table{
		{DB: "other", Name: "t", Files: []DataFile{{Path: j("other.t.00001.SQL"), Size: 0, Format: FormatSQL}}},
		{DB: "shop", Name: "empty", SchemaFile: j("shop.empty-schema.sql")},
		{DB: "shop", Name: "orders", Files: []DataFile{
			{Path: j("shop.orders.00000000.csv"), Size: 4, Format: FormatCSV},
			{Path: j("shop.orders.csv"), Size: 4, Format: FormatCSV},
		}},
		{DB: "shop", Name: "users", SchemaFile: j("shop.users-schema.sql"), Files: []DataFile{
			{Path: j("shop.users.00000.sql"), Size: 29, Format: FormatSQL},
			{Path: j("shop.users.00001.sql.gz"), Size: 1, Format: FormatSQL, Compression: CompressionGzip},
			{Path: j("shop.users.00002.csv.zst"), Size: 1, Format: FormatCSV, Compression: CompressionZstd},
		}},
	}
	if !reflect.DeepEqual(l.Tables, wantTables) {
		t.Errorf("tables %+v\nwant %+v", l.Tables, wantTables)
	}
	wantSkipped := []string{".hidden.t.sql", "metadata", "noext", "readme.txt",
		"shop.seq-schema-sequence.sql", "shop.users-schema-post.sql", "shop.users-schema-triggers.sql",
		"shop.v-schema-view.sql", "shop.v-schema.sql", "sub.t.sql"}
	if !reflect.DeepEqual(l.Skipped, wantSkipped) {
		t.Errorf("skipped %q\nwant %q", l.Skipped, wantSkipped)
	}
	if l.Dir != dir {
		t.Errorf("dir %q", l.Dir)
	}
}

// TestDiscoverUnreadable: a file named like a table's data file that storm
// cannot read fails the discovery naming it and why, unless a rule ignores
// it.
func TestDiscoverUnreadable(t *testing.T) {
	tests := []struct {
		name   string
		files  []string
		routes []Route
		want   []string // in the error; nil: no error
	}{
		{"unknown format", []string{"shop.t.json", "shop.t.00001.csv"}, nil,
			[]string{"shop.t.json (format .json is not supported"}},
		{"unknown compression", []string{"shop.t.00001.csv.bz2"}, nil,
			[]string{"shop.t.00001.csv.bz2 (compression .bz2 is not supported"}},
		{"every one named", []string{"shop.a.avro", "shop.b.1.csv.lz4"}, nil,
			[]string{"2 file(s)", "shop.a.avro", "shop.b.1.csv.lz4", `type = "ignore"`}},
		{"ignored by a rule", []string{"shop.t.json", "shop.t.csv"}, []Route{{Pattern: `\.json$`, Type: "ignore"}}, nil},
		{"not data-like", []string{"readme.txt", "notes", "shop.t-schema-view.sql", "shop.t-schema-triggers.sql"}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				writeFile(t, dir, f, []byte("1\n"))
			}
			l, err := DiscoverWith(dir, tc.routes)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if len(l.Skipped) == 0 && tc.routes != nil {
					t.Errorf("nothing skipped")
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; tables %+v, skipped %q", l.Tables, l.Skipped)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestDiscoverMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	if _, err := Discover(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %v: want one naming %s", err, dir)
	}
}

func TestReadSchema(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"dumpling database", "/*!40101 SET NAMES binary*/;\nCREATE DATABASE `shop` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;\n",
			"CREATE DATABASE `shop` /*!40100 DEFAULT CHARACTER SET utf8mb4 */"},
		{"mysqldump table", "-- comment\n/*!40101 SET @saved_cs_client     = @@character_set_client */;\n" +
			"/*!40101 SET character_set_client = utf8 */;\nDROP TABLE IF EXISTS `t`;\n" +
			"CREATE TABLE `t` (\n  `id` int NOT NULL, -- the key\n  `s` varchar(10) DEFAULT 'a;b -- c' COMMENT 'it''s /* x */',\n" +
			"  PRIMARY KEY (`id`) /* plain */\n) ENGINE=InnoDB /*!50100 PARTITION BY HASH (id) */;\n" +
			"/*!40101 SET character_set_client = @saved_cs_client */;\n",
			"CREATE TABLE `t` (\n  `id` int NOT NULL,  \n  `s` varchar(10) DEFAULT 'a;b -- c' COMMENT 'it''s /* x */',\n" +
				"  PRIMARY KEY (`id`)  \n) ENGINE=InnoDB /*!50100 PARTITION BY HASH (id) */"},
		{"mydumper", "/*!40101 SET NAMES binary*/;\n/*!40014 SET FOREIGN_KEY_CHECKS=0*/;\n\ncreate table `a;b` (x int)\n",
			"create table `a;b` (x int)"},
		{"escaped quote", "SET x=1;\nCREATE TABLE t (s text DEFAULT 'a\\';b');", "CREATE TABLE t (s text DEFAULT 'a\\';b')"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "shop.t-schema.sql", []byte(tc.in))
			got, err := ReadSchema(p)
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v\nwant %q", got, err, tc.want)
			}
		})
	}
	dir := t.TempDir()
	for name, in := range map[string]string{"none": "/*!40101 SET NAMES binary*/;\n-- CREATE TABLE t\n", "two": "CREATE TABLE a (x int); CREATE TABLE b (x int);"} {
		p := writeFile(t, dir, name+".sql", []byte(in))
		if _, err := ReadSchema(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
	p := writeFile(t, dir, "shop.t-schema.sql.gz", compress(t, CompressionGzip, []byte("CREATE TABLE t (x int);")))
	if got, err := ReadSchema(p); err != nil || got != "CREATE TABLE t (x int)" {
		t.Errorf("gzip schema: %q, %v", got, err)
	}
}

// TestDiscoverParquet: Parquet files by the mydumper naming and by a rule;
// one wrapped in gzip is refused either way.
func TestDiscoverParquet(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "shop.t.00001.parquet", []byte("x"))
	if err := os.MkdirAll(filepath.Join(dir, "export", "orders"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "export", "orders"), "part-0.snappy.parquet", []byte("x"))
	rules := []Route{{Pattern: `^export/(\w+)/part-\d+.*\.parquet$`, Schema: "shop", Table: "$1", Type: "parquet"}}
	l, err := DiscoverWith(dir, rules)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Tables) != 2 || l.Tables[0].Name != "orders" || l.Tables[1].Name != "t" ||
		l.Tables[0].Files[0].Format != FormatParquet || l.Tables[1].Files[0].Format != FormatParquet {
		t.Fatalf("tables %+v", l.Tables)
	}
	writeFile(t, dir, "shop.u.parquet.gz", []byte("x"))
	if _, err := Discover(dir); err == nil || !strings.Contains(err.Error(), "shop.u.parquet.gz (a Parquet file compresses its own pages") {
		t.Errorf("error %v", err)
	}
	gz := []Route{{Pattern: `\.parquet\.gz$`, Schema: "shop", Table: "u", Type: "parquet"}}
	if _, err := DiscoverWith(dir, gz); err == nil || !strings.Contains(err.Error(), "compresses its own pages") {
		t.Errorf("error %v", err)
	}
}
