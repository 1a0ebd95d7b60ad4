package source

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// The example rule: Lightning's default mydumper pattern.
const exampleRule = `(?i)^(?:[^/]*/)*([a-z0-9_]+)\.([a-z0-9_]+)\.(?:\d+)\.(csv|sql)(?:\.(gz|zst))?$`

func TestCheckRoutes(t *testing.T) {
	ok := Route{Pattern: `^(\w+)\.csv$`, Schema: "db", Table: "$1", Type: "csv"}
	cases := []struct {
		name    string
		routes  []Route
		wantErr string // "" = valid
	}{
		{"none", nil, ""},
		{"one", []Route{ok}, ""},
		{"the issue's example", []Route{{Pattern: exampleRule, Schema: "$1", Table: "$2", Type: "$3", Compression: "$4"}}, ""},
		{"ignore needs no names", []Route{{Pattern: `\.tmp$`, Type: "ignore"}}, ""},
		{"schema needs no table", []Route{{Pattern: `^(\w+)-schema-create\.sql$`, Schema: "$1", Type: "schema"}}, ""},
		{"Lightning's schema-schema", []Route{{Pattern: `x`, Schema: "d", Type: "schema-schema"}}, ""},
		{"type is case-insensitive", []Route{{Pattern: `x`, Schema: "d", Table: "t", Type: " SQL "}}, ""},
		{"literal compression", []Route{{Pattern: `x`, Schema: "d", Table: "t", Type: "csv", Compression: "zstd"}}, ""},
		{"bad pattern names its rule", []Route{ok, {Pattern: `([a-z`, Schema: "d", Table: "t", Type: "csv"}},
			"source.files rule #2 (pattern \"([a-z\"): error parsing regexp: missing closing ]"},
		{"no pattern", []Route{{Schema: "d", Table: "t", Type: "csv"}}, "rule #1 (pattern \"\"): no pattern"},
		{"no type", []Route{{Pattern: "x", Schema: "d", Table: "t"}}, "rule #1 (pattern \"x\"): no type"},
		{"bad type", []Route{{Pattern: "x", Schema: "d", Table: "t", Type: "avro"}}, `type "avro": want csv, sql, parquet`},
		{"bad compression", []Route{{Pattern: "x", Schema: "d", Table: "t", Type: "csv", Compression: "snappy"}}, `compression "snappy"`},
		{"no schema", []Route{{Pattern: "x", Table: "t", Type: "sql"}}, "rule #1 (pattern \"x\"): no schema"},
		{"no table", []Route{{Pattern: "x", Schema: "d", Type: "table-schema"}}, "rule #1 (pattern \"x\"): no table"},
		{"every bad rule is named", []Route{{Pattern: "("}, ok, {Pattern: ")"}}, "rule #1 (pattern \"(\")"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckRoutes(c.routes)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
	if err := CheckRoutes([]Route{{Pattern: "("}, ok, {Pattern: ")"}}); err == nil || !strings.Contains(err.Error(), "rule #3") {
		t.Errorf("error %v: want every bad rule named", err)
	}
}

func TestRoute(t *testing.T) {
	rules, err := compileRoutes([]Route{
		{Pattern: `(?i)\.tmp$`, Type: "ignore"},
		{Pattern: exampleRule, Schema: "$1", Table: "$2", Type: "$3", Compression: "$4"},
		{Pattern: `^export/(?P<table>\w+)_part\d+\.(csv|sql)`, Schema: "shop", Table: "${table}_copy", Type: "$2"},
		{Pattern: `^ddl/(\w+)\.sql$`, Schema: "shop", Table: "$1", Type: "table-schema"},
		{Pattern: `^raw/(\w*)\.(\w+)$`, Schema: "shop", Table: "$1", Type: "$2"},
		{Pattern: `^forced/(\w+)\.dat$`, Schema: "shop", Table: "$1", Type: "csv", Compression: "gzip"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		rel     string
		want    routed // rule left out: checked by ruleN
		ruleN   int    // 0: no rule matches
		wantErr string
	}{
		{rel: "a/b/x.TMP", ruleN: 1, want: routed{kind: RouteIgnore}},
		{rel: "db1.t1.001.csv", ruleN: 2, want: routed{kind: RouteCSV, db: "db1", table: "t1", format: FormatCSV}},
		{rel: "sub/dir/DB1.T1.7.SQL.GZ", ruleN: 2, want: routed{kind: RouteSQL, db: "DB1", table: "T1", format: FormatSQL, comp: CompressionGzip}},
		{rel: "db1.t1.7.sql.zst", ruleN: 2, want: routed{kind: RouteSQL, db: "db1", table: "t1", format: FormatSQL, comp: CompressionZstd}},
		{rel: "export/customers_part3.csv.gz", ruleN: 3, want: routed{kind: RouteCSV, db: "shop", table: "customers_copy", format: FormatCSV, comp: CompressionGzip}},
		{rel: "ddl/customers.sql", ruleN: 4, want: routed{kind: RouteTableSchema, db: "shop", table: "customers"}},
		{rel: "raw/t.csv", ruleN: 5, want: routed{kind: RouteCSV, db: "shop", table: "t", format: FormatCSV}},
		{rel: "raw/t.json", wantErr: `raw/t.json: source.files rule #5 (pattern "^raw/(\\w*)\\.(\\w+)$"): type "json"`},
		{rel: "raw/.csv", wantErr: `table "$1" expands to an empty name`},
		{rel: "forced/t.dat", ruleN: 6, want: routed{kind: RouteCSV, db: "shop", table: "t", format: FormatCSV, comp: CompressionGzip}},
		{rel: "db1.t1-schema.sql"},
		{rel: "README.md"},
	}
	for _, c := range cases {
		t.Run(c.rel, func(t *testing.T) {
			got, err := route(rules, c.rel)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			if got.rule != nil {
				n = got.rule.n
			}
			got.rule = nil
			if n != c.ruleN || got != c.want {
				t.Fatalf("rule #%d %+v, want rule #%d %+v", n, got, c.ruleN, c.want)
			}
		})
	}
}

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeTree writes files (relative paths, "/"-separated) under a new
// directory.
func writeTree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for rel, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDiscoverWith(t *testing.T) {
	mixed := "INSERT INTO `customers` VALUES (1);\nINSERT INTO `orders` VALUES (2);\n"
	files := map[string][]byte{
		"metadata":                       []byte("Started dump at: ..."),
		"shop-schema-create.sql":         []byte("CREATE DATABASE `shop`;"),
		"shop.users-schema.sql":          []byte("CREATE TABLE `users` (id int);"),
		"shop.users.00000.sql":           []byte("INSERT INTO `users` VALUES (1);"),
		"shop.v-schema.sql":              []byte("CREATE TABLE `v` (x int);"),
		"shop.v-schema-view.sql":         []byte("CREATE VIEW `v` AS SELECT 1;"),
		"export/customers_part1.csv.gz":  gz(t, "id\n1\n"),
		"export/customers_part2.csv.gz":  gz(t, "id\n2\n"),
		"export/orders_part1.sql":        []byte("/*!40101 SET NAMES binary*/;\nINSERT INTO `orders` VALUES (1);\nINSERT INTO `orders` VALUES (2);\n"),
		"export/README.md":               []byte("hello"),
		"export/scratch.tmp":             []byte("x"),
		"ddl/customers.sql":              []byte("CREATE TABLE `customers` (id int);"),
		"ddl/orders.sql":                 []byte("CREATE TABLE `orders` (id int);"),
		"ddl/old/orders.sql":             []byte("CREATE TABLE `orders` (id int);"),
		"deep/a/b/c/shop.deep.00001.csv": []byte("1\n"),
		"all.sql":                        []byte(mixed),
		"backup/shop.users.00000.sql":    []byte("INSERT INTO `users` VALUES (1);"),
	}
	dir := writeTree(t, files)
	j := func(rel string) string { return filepath.Join(dir, filepath.FromSlash(rel)) }
	size := func(rel string) int64 { return int64(len(files[rel])) }
	exportRules := []Route{
		{Pattern: `\.tmp$`, Type: "ignore"},
		{Pattern: `^export/(\w+)_part\d+\.(csv|sql)(?:\.(gz|zst))?$`, Schema: "shop", Table: "$1", Type: "$2", Compression: "$3"},
		{Pattern: `^ddl/(\w+)\.sql$`, Schema: "shop", Table: "$1", Type: "table-schema"},
	}
	cases := []struct {
		name        string
		routes      []Route
		wantDBs     []Database
		wantTables  []Table
		wantSkipped []string
		wantErr     []string
	}{
		{
			name:    "no rules: the mydumper names in dir only",
			wantDBs: []Database{{Name: "shop", SchemaFile: j("shop-schema-create.sql")}},
			wantTables: []Table{{DB: "shop", Name: "users", SchemaFile: j("shop.users-schema.sql"),
				Files: []DataFile{{Path: j("shop.users.00000.sql"), Size: size("shop.users.00000.sql"), Format: FormatSQL}}}},
			wantSkipped: []string{"all.sql", "backup", "ddl", "deep", "export", "metadata", "shop.v-schema-view.sql", "shop.v-schema.sql"},
		},
		{
			name:    "rules walk subdirectories; unmatched files there are skipped",
			routes:  exportRules,
			wantDBs: []Database{{Name: "shop", SchemaFile: j("shop-schema-create.sql")}},
			wantTables: []Table{
				{DB: "shop", Name: "customers", SchemaFile: j("ddl/customers.sql"), Files: []DataFile{
					{Path: j("export/customers_part1.csv.gz"), Size: size("export/customers_part1.csv.gz"), Format: FormatCSV, Compression: CompressionGzip},
					{Path: j("export/customers_part2.csv.gz"), Size: size("export/customers_part2.csv.gz"), Format: FormatCSV, Compression: CompressionGzip},
				}},
				// ddl/old/orders.sql is not matched: ^ddl/(\w+)\.sql$ has no "/" in the name.
				{DB: "shop", Name: "orders", SchemaFile: j("ddl/orders.sql"), Files: []DataFile{
					{Path: j("export/orders_part1.sql"), Size: size("export/orders_part1.sql"), Format: FormatSQL},
				}},
				{DB: "shop", Name: "users", SchemaFile: j("shop.users-schema.sql"),
					Files: []DataFile{{Path: j("shop.users.00000.sql"), Size: size("shop.users.00000.sql"), Format: FormatSQL}}},
			},
			wantSkipped: []string{"all.sql", "backup/shop.users.00000.sql", "ddl/old/orders.sql", "deep/a/b/c/shop.deep.00001.csv",
				"export/README.md", "export/scratch.tmp", "metadata", "shop.v-schema-view.sql", "shop.v-schema.sql"},
		},
		{
			name: "rename a mydumper dump's database; the view placeholder stays skipped",
			routes: []Route{
				{Pattern: `^shop-schema-create\.sql$`, Schema: "copy", Type: "schema"},
				{Pattern: `^shop\.(\w+)-schema\.sql$`, Schema: "copy", Table: "$1", Type: "table-schema"},
				{Pattern: `^shop\.(\w+)\.\d+\.sql$`, Schema: "copy", Table: "$1", Type: "sql"},
				{Pattern: `/`, Type: "ignore"},
				{Pattern: `^all\.sql$`, Type: "ignore"},
			},
			wantDBs: []Database{{Name: "copy", SchemaFile: j("shop-schema-create.sql")}},
			wantTables: []Table{{DB: "copy", Name: "users", SchemaFile: j("shop.users-schema.sql"),
				Files: []DataFile{{Path: j("shop.users.00000.sql"), Size: size("shop.users.00000.sql"), Format: FormatSQL}}}},
			wantSkipped: []string{"all.sql", "backup/shop.users.00000.sql", "ddl/customers.sql", "ddl/old/orders.sql", "ddl/orders.sql",
				"deep/a/b/c/shop.deep.00001.csv", "export/README.md", "export/customers_part1.csv.gz", "export/customers_part2.csv.gz",
				"export/orders_part1.sql", "export/scratch.tmp", "metadata", "shop.v-schema-view.sql", "shop.v-schema.sql"},
		},
		{
			name: "any depth; first rule wins; a second schema for a table is skipped",
			routes: []Route{
				{Pattern: exampleRule, Schema: "$1", Table: "$2", Type: "$3", Compression: "$4"},
				{Pattern: `(?:^|/)shop\.(\w+)\.\d+\.sql$`, Schema: "never", Table: "$1", Type: "sql"},
				{Pattern: `^ddl/(?:old/)?(\w+)\.sql$`, Schema: "shop", Table: "$1", Type: "table-schema"},
				{Pattern: `.`, Type: "ignore"},
			},
			wantTables: []Table{
				{DB: "shop", Name: "customers", SchemaFile: j("ddl/customers.sql")},
				{DB: "shop", Name: "deep", Files: []DataFile{{Path: j("deep/a/b/c/shop.deep.00001.csv"), Size: 2, Format: FormatCSV}}},
				{DB: "shop", Name: "orders", SchemaFile: j("ddl/old/orders.sql")},
				{DB: "shop", Name: "users", Files: []DataFile{
					{Path: j("backup/shop.users.00000.sql"), Size: size("backup/shop.users.00000.sql"), Format: FormatSQL},
					{Path: j("shop.users.00000.sql"), Size: size("shop.users.00000.sql"), Format: FormatSQL},
				}},
			},
			wantDBs: []Database{{Name: "shop"}},
			wantSkipped: []string{"all.sql", "ddl/orders.sql", "export/README.md", "export/customers_part1.csv.gz", "export/customers_part2.csv.gz",
				"export/orders_part1.sql", "export/scratch.tmp", "metadata", "shop-schema-create.sql", "shop.users-schema.sql",
				"shop.v-schema-view.sql", "shop.v-schema.sql"},
		},
		{
			name:    "a file of several tables routed to one table is an error",
			routes:  []Route{{Pattern: `^all\.sql$`, Schema: "shop", Table: "customers", Type: "sql"}},
			wantErr: []string{j("all.sql") + ":2: INSERT into table `orders`, but the file's first INSERT (line 1) is into `customers`", "shop`.`customers` by source.files rule #1"},
		},
		{
			name:    "a rule that expands to nonsense names the file",
			routes:  []Route{{Pattern: `^export/(\w+)\.(\w+)$`, Schema: "shop", Table: "$1", Type: "$2"}},
			wantErr: []string{`export/README.md: source.files rule #1`, `type "md"`},
		},
		{
			name:    "a bad rule",
			routes:  []Route{{Pattern: `(`, Schema: "shop", Table: "t", Type: "sql"}},
			wantErr: []string{`source.files rule #1 (pattern "(")`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := DiscoverWith(dir, c.routes)
			if c.wantErr != nil {
				if err == nil {
					t.Fatalf("no error, want one containing %q", c.wantErr)
				}
				for _, w := range c.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Fatalf("error %v\nwant one containing %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(l.Databases, c.wantDBs) {
				t.Errorf("databases %+v\nwant %+v", l.Databases, c.wantDBs)
			}
			if !reflect.DeepEqual(l.Tables, c.wantTables) {
				t.Errorf("tables %+v\nwant %+v", l.Tables, c.wantTables)
			}
			if !reflect.DeepEqual(l.Skipped, c.wantSkipped) {
				t.Errorf("skipped %q\nwant %q", l.Skipped, c.wantSkipped)
			}
		})
	}
}

// A mydumper-named file is trusted to hold one table, as without rules, so
// renaming a big dump's database does not read it at plan time.
func TestDiscoverWithTrustsMydumperNames(t *testing.T) {
	dir := writeTree(t, map[string][]byte{"shop.users.00000.sql": []byte("INSERT INTO a VALUES (1); INSERT INTO b VALUES (2);")})
	l, err := DiscoverWith(dir, []Route{{Pattern: `^shop\.(\w+)\.`, Schema: "copy", Table: "$1", Type: "sql"}})
	if err != nil || len(l.Tables) != 1 {
		t.Fatalf("%+v %v", l, err)
	}
}

func TestScanInserts(t *testing.T) {
	type ins struct {
		Table string
		Line  int64
	}
	cases := []struct {
		name    string
		sql     string
		want    []ins
		wantErr string
	}{
		{"plain", "INSERT INTO t VALUES (1),(2);\nINSERT INTO t VALUES (3);", []ins{{"t", 1}, {"t", 2}}, ""},
		{"modifiers, quoting, qualifiers", "insert low_priority ignore into `db`.`my``t` (a,b) values (1,2);\n" +
			"REPLACE `x y`.\"z\" VALUES (1);\nINSERT HIGH_PRIORITY t2 VALUE (1);\nINSERT /* c */ INTO -- c\n t3 VALUES (1);",
			[]ins{{"my`t", 1}, {"z", 2}, {"t2", 3}, {"t3", 4}}, ""},
		{"other statements are skipped", "/*M!999999\\- enable the sandbox mode */\n-- MariaDB dump\n" +
			"/*!40101 SET NAMES utf8mb4 */;\nDROP TABLE IF EXISTS `a`;\nCREATE TABLE `a` (\n  `x` varchar(10) DEFAULT ';'\n);\n" +
			"LOCK TABLES `a` WRITE;\n/*!40000 ALTER TABLE `a` DISABLE KEYS */;\nINSERT INTO `a` VALUES ('x');\n" +
			"/*!40000 ALTER TABLE `a` ENABLE KEYS */;\nUNLOCK TABLES;\n", []ins{{"a", 10}}, ""},
		{"statements inside strings and comments do not count", "INSERT INTO a VALUES ('it''s; INSERT INTO b VALUES (1);'," +
			"\"\\\"; INSERT INTO c VALUES (1)\",'\\\\','\\'',\n'multi\nline;\n', `x;y`);\n# INSERT INTO d VALUES (1);\n" +
			"-- INSERT INTO e VALUES (1);\n/* INSERT INTO f VALUES (1); */ /*!40000 INSERT INTO g VALUES (1) */;\n" +
			"INSERT INTO h VALUES (1-- 2\n);\nINSERT INTO i VALUES (1--2);INSERT INTO j VALUES (3/4), (5#6\n);",
			[]ins{{"a", 1}, {"h", 8}, {"i", 10}, {"j", 10}}, ""},
		{"a statement without an end", "INSERT INTO a VALUES (1)", []ins{{"a", 1}}, ""},
		{"empty", "", nil, ""},
		// mariadb-dump's triggers: DELIMITER around a versioned comment.
		{"a trigger", "INSERT INTO t VALUES (1);\nDELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ " +
			"/*!50003 TRIGGER trg BEFORE INSERT ON t FOR EACH ROW BEGIN\nINSERT INTO log VALUES (1);\nEND */;;\ndelimiter ;\n" +
			"INSERT INTO t VALUES (2);", []ins{{"t", 1}, {"t", 7}}, ""},
		// mysqldump --routines: a body the SQL reader would read as rows.
		{"a routine", "INSERT INTO t VALUES (1);\nDELIMITER $$\nCREATE PROCEDURE p()\nBEGIN\n  DECLARE x INT;\n" +
			"  INSERT INTO t VALUES (7);\nEND $$\nDELIMITER ;\nINSERT INTO t VALUES (2);", []ins{{"t", 1}},
			"f:6: INSERT into `t` after \"DELIMITER $$\" (line 2): a statement of a stored routine's body"},
	}
	for _, c := range cases {
		for _, oneByte := range []bool{false, true} {
			t.Run(c.name, func(t *testing.T) {
				r := bytes.NewReader([]byte(c.sql))
				var got []ins
				var err error
				if oneByte {
					err = scanInserts(iotest.OneByteReader(r), "f", func(table string, line int64) error {
						got = append(got, ins{table, line})
						return nil
					})
				} else {
					err = scanInserts(r, "f", func(table string, line int64) error {
						got = append(got, ins{table, line})
						return nil
					})
				}
				if c.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), c.wantErr) {
						t.Fatalf("error %v, want one containing %q", err, c.wantErr)
					}
				} else if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, c.want) {
					t.Fatalf("got %v, want %v", got, c.want)
				}
			})
		}
	}
}

func TestReadSchemaNamed(t *testing.T) {
	cases := []struct {
		name, file, as, want, wantErr string
	}{
		{"database renamed", "CREATE DATABASE `src` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;", "tgt",
			"CREATE DATABASE `tgt` /*!40100 DEFAULT CHARACTER SET utf8mb4 */", ""},
		{"mysqldump's IF NOT EXISTS", "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `src` /*!40100 DEFAULT CHARACTER SET latin1 */;", "t`gt",
			"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `t``gt` /*!40100 DEFAULT CHARACTER SET latin1 */", ""},
		{"schema, bare name", "create schema if not exists src;", "tgt", "create schema if not exists `tgt`", ""},
		{"same name unchanged", "CREATE TABLE `t` (id int);", "t", "CREATE TABLE `t` (id int)", ""},
		{"bare same name unchanged", "CREATE TABLE t (id int);", "t", "CREATE TABLE t (id int)", ""},
		{"table renamed, qualifier dropped", "/*!40101 SET NAMES binary*/;\nDROP TABLE IF EXISTS `src`.`t`;\nCREATE TABLE `src` . `t` (\n  `t` int\n);", "u",
			"CREATE TABLE `u` (\n  `t` int\n)", ""},
		{"or replace, temporary, if not exists", "CREATE OR REPLACE TEMPORARY TABLE IF NOT EXISTS t(id int);", "u",
			"CREATE OR REPLACE TEMPORARY TABLE IF NOT EXISTS `u`(id int)", ""},
		{"a view is left alone", "CREATE ALGORITHM=UNDEFINED VIEW `v` AS SELECT 1;", "w", "CREATE ALGORITHM=UNDEFINED VIEW `v` AS SELECT 1", ""},
		{"no name", "CREATE TABLE (id int);", "u", "", "no table name found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "x-schema.sql", []byte(c.file))
			got, err := ReadSchemaNamed(p, c.as)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), p) {
					t.Fatalf("error %v, want one naming the file and containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

// A view's placeholder is paired with its view by path, in any directory
// and under any rule, with the names' case kept: an empty table v is not
// taken for the placeholder of a view V.
func TestDiscoverViewPlaceholders(t *testing.T) {
	dir := writeTree(t, map[string][]byte{
		"shop.V-schema-view.sql.gz":    gz(t, "CREATE VIEW `V` AS SELECT 1;"),
		"shop.V-schema.sql.gz":         gz(t, "CREATE TABLE `V` (x int);"),
		"shop.v-schema.sql":            []byte("CREATE TABLE `v` (x int);"),
		"sub/shop.w-schema-view.sql":   []byte("CREATE VIEW `w` AS SELECT 1;"),
		"sub/shop.w-schema.sql":        []byte("CREATE TABLE `w` (x int);"),
		"sub/shop.t-schema.sql":        []byte("CREATE TABLE `t` (x int);"),
		"other/shop.t-schema-view.sql": []byte("CREATE VIEW `t` AS SELECT 1;"),
	})
	for _, routes := range [][]Route{nil, {{Pattern: `(?:^|/)shop\.(\w+)-schema\.sql`, Schema: "copy", Table: "$1", Type: "table-schema"}}} {
		l, err := DiscoverWith(dir, routes)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tb := range l.Tables {
			names = append(names, tb.DB+"."+tb.Name)
		}
		want := "shop.v"
		if routes != nil {
			want = "copy.t copy.v" // sub/shop.t has no view beside it
		}
		if got := strings.Join(names, " "); got != want {
			t.Errorf("rules %v: tables %s, want %s (skipped %q)", routes != nil, got, want, l.Skipped)
		}
	}
}
