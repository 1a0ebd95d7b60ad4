package source

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"storm/import/storage"
)

// Layout is what Discover found in a dump directory.
type Layout struct {
	Dir       string
	Databases []Database // every database with a schema file or a table
	Tables    []Table
	Skipped   []string // names of the entries that are not used, for logging
}

// Database is one database of the dump.
type Database struct {
	Name       string
	SchemaFile string // "" when the dump has no <db>-schema-create.sql
}

// Table is one table of the dump with its data files.
type Table struct {
	DB, Name   string
	SchemaFile string // "" when the dump has no <db>.<table>-schema.sql
	Files      []DataFile
}

// DataFile is one file of table rows.
type DataFile struct {
	Path        string // a path, or an s3:// URL
	Size        int64  // on disk, so compressed when Compression is set
	ETag        string // of an S3 object, as listed
	Format      Format
	Compression Compression
}

// Version is what a reader must find to read f as listed: its size and ETag
// when f is an S3 object, nothing for a local file.
func (f DataFile) Version() storage.Version {
	if f.ETag == "" {
		return storage.Version{}
	}
	return storage.Version{Size: f.Size, ETag: f.ETag}
}

// ignoredSchemas are the schema files of objects that are not tables.
var ignoredSchemas = []string{"-schema-triggers.sql", "-schema-post.sql", "-schema-sequence.sql"}

// Discover lists the databases, tables and data files of a mydumper or
// Dumpling dump in dir (not its subdirectories):
//
//	<db>-schema-create.sql       CREATE DATABASE
//	<db>.<table>-schema.sql      CREATE TABLE
//	<db>.<table>[.<part>].csv    rows; also .sql, and either with .gz or .zst
//	<db>.<table>[.<part>].parquet  rows, in Apache Parquet
//
// Names are split at their first two dots, so database and table names must
// not contain dots. Everything else, such as metadata and the schemas of
// views and triggers, is listed in Skipped. So is the placeholder
// <db>.<view>-schema.sql (a CREATE TABLE with the view's columns) that
// mydumper and Dumpling write next to <db>.<view>-schema-view.sql: creating
// it would leave a table where the source had a view. A file in dir named
// like a table's data file, <db>.<table>[.<part>].<ext>[.<compression>],
// whose format or compression storm cannot read is an error naming it, not
// a skip: its table would be imported without its rows. The result is
// sorted.
func Discover(dir string) (*Layout, error) {
	return DiscoverWith(dir, nil)
}

// DiscoverWith is Discover with [[source.files]] routing rules. With rules,
// the whole tree under dir is listed (symlinked directories are not
// followed), and each file's path relative to dir, "/"-separated, goes
// through the rules in order: the first rule that matches says what the
// file is, and "ignore" skips it. A file no rule matches is named by the
// mydumper convention if it is in dir itself, and skipped if it is in a
// subdirectory. Skipped lists paths relative to dir.
//
// When several files are routed to one schema, the first in path order is
// used and the others are listed in Skipped.
//
// An SQL data file routed by a rule whose name is not a mydumper data file
// name (all.sql, export/part1.sql) is read through once, to check that all
// its INSERT statements are into the same table: a dump of several tables
// in one file (mysqldump, mariadb-dump) cannot be routed to one table, since
// the SQL reader loads every INSERT of a file into the table the file is
// routed to.
func DiscoverWith(dir string, routes []Route) (*Layout, error) {
	rules, err := compileRoutes(routes)
	if err != nil {
		return nil, err
	}
	entries, err := listDump(dir, len(rules) > 0)
	if err != nil {
		return nil, err
	}
	l := &Layout{Dir: dir}
	dbs := map[string]*Database{}
	tables := map[[2]string]*Table{}
	views := map[string]bool{} // schemaPrefix of each <db>.<view>-schema-view.sql
	db := func(name string) *Database {
		if dbs[name] == nil {
			dbs[name] = &Database{Name: name}
		}
		return dbs[name]
	}
	table := func(d, name string) *Table {
		k := [2]string{d, name}
		if tables[k] == nil {
			db(d)
			tables[k] = &Table{DB: d, Name: name}
		}
		return tables[k]
	}
	setSchema := func(dst *string, e dumpEntry) {
		if *dst == "" {
			*dst = e.path
		} else {
			l.Skipped = append(l.Skipped, e.rel)
		}
	}
	addData := func(t *Table, e dumpEntry, format Format, comp Compression) {
		t.Files = append(t.Files, DataFile{Path: e.path, Size: e.size, ETag: e.etag, Format: format, Compression: comp})
	}
	var check []oneTableCheck // rule-routed SQL files to read through
	var unreadable []string   // data-like names storm cannot read
	for _, e := range entries {
		if !e.regular {
			l.Skipped = append(l.Skipped, e.rel)
			continue
		}
		name := storage.Base(e.path)
		if p, ok := viewPrefix(e.path); ok {
			views[p] = true
		}
		if len(rules) > 0 {
			r, err := route(rules, e.rel)
			if err != nil {
				return nil, err
			}
			if r.rule != nil {
				switch r.kind {
				case RouteIgnore:
					l.Skipped = append(l.Skipped, e.rel)
				case RouteSchema:
					setSchema(&db(r.db).SchemaFile, e)
				case RouteTableSchema:
					setSchema(&table(r.db, r.table).SchemaFile, e)
				default:
					addData(table(r.db, r.table), e, r.format, r.comp)
					if f, ok := classify(name); r.format == FormatSQL && (!ok || f.kind != kindData) {
						check = append(check, oneTableCheck{path: e.path, comp: r.comp, db: r.db, table: r.table, rule: r.rule.n})
					}
				}
				continue
			}
			if strings.Contains(e.rel, "/") {
				l.Skipped = append(l.Skipped, e.rel)
				continue
			}
		}
		f, ok := classify(name)
		switch {
		case !ok:
			if why := cannotRead(name); why != "" {
				unreadable = append(unreadable, e.rel+" ("+why+")")
				continue
			}
			l.Skipped = append(l.Skipped, e.rel)
		case f.kind == kindDBSchema:
			setSchema(&db(f.db).SchemaFile, e)
		case f.kind == kindTableSchema:
			setSchema(&table(f.db, f.table).SchemaFile, e)
		default:
			addData(table(f.db, f.table), e, f.format, f.comp)
		}
	}
	if len(unreadable) > 0 {
		// Skipping them would import the table without their rows and
		// still report success.
		return nil, fmt.Errorf("%d file(s) named like table data that storm cannot read: %s; "+
			"add a [[source.files]] rule with type = \"ignore\" for files that are not to be loaded",
			len(unreadable), strings.Join(unreadable, ", "))
	}
	if err := checkOneTable(check); err != nil {
		return nil, err
	}
	for _, d := range dbs {
		l.Databases = append(l.Databases, *d)
	}
	sort.Slice(l.Databases, func(i, j int) bool { return l.Databases[i].Name < l.Databases[j].Name })
	for _, t := range tables {
		if p, ok := schemaPrefix(t.SchemaFile); ok && len(t.Files) == 0 && views[p] {
			rel, _ := filepath.Rel(dir, t.SchemaFile)
			l.Skipped = append(l.Skipped, filepath.ToSlash(rel))
			continue
		}
		sort.Slice(t.Files, func(i, j int) bool { return t.Files[i].Path < t.Files[j].Path })
		l.Tables = append(l.Tables, *t)
	}
	sort.Slice(l.Tables, func(i, j int) bool {
		a, b := l.Tables[i], l.Tables[j]
		if a.DB != b.DB {
			return a.DB < b.DB
		}
		return a.Name < b.Name
	})
	sort.Strings(l.Skipped)
	return l, nil
}

// dumpEntry is one entry of a dump directory.
type dumpEntry struct {
	path    string // dir joined with rel
	rel     string // relative to the dump directory, "/"-separated
	regular bool   // a regular file, or a symlink to one
	size    int64
	etag    string // an S3 object's
}

// listDump lists the entries of dir (a directory or an s3:// prefix); with
// tree, those of its subdirectories too, in place of the directories
// themselves.
func listDump(dir string, tree bool) ([]dumpEntry, error) {
	entries, err := storage.List(context.Background(), dir, tree)
	if err != nil {
		return nil, err
	}
	out := make([]dumpEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, dumpEntry{path: e.Path, rel: e.Rel, regular: e.Regular, size: e.Size, etag: e.ETag})
	}
	return out, nil
}

// viewPrefix returns the schemaPrefix of the table placeholder that goes
// with a view's schema file (<db>.<view>-schema-view.sql), in any directory.
func viewPrefix(path string) (string, bool) {
	base, _ := trimCompression(path)
	return cutSuffixFold(base, "-schema-view.sql")
}

// schemaPrefix is a table schema file's path without "-schema.sql" and its
// compression: the key that pairs it with its view's file.
func schemaPrefix(path string) (string, bool) {
	base, _ := trimCompression(path)
	b, ok := cutSuffixFold(base, "-schema.sql")
	return b, ok && path != ""
}

type fileKind int

const (
	kindData fileKind = iota
	kindDBSchema
	kindTableSchema
	kindView // a view's schema: skipped, but it marks its placeholder table
)

type fileName struct {
	kind      fileKind
	db, table string
	format    Format
	comp      Compression
}

// classify parses a file name of the dump; ok is false for files to skip.
func classify(name string) (f fileName, ok bool) {
	base, comp := trimCompression(name)
	f.comp = comp
	if b, ok := cutSuffixFold(base, "-schema-create.sql"); ok {
		f.kind, f.db = kindDBSchema, b
		return f, b != "" && !strings.Contains(b, ".")
	}
	if b, ok := cutSuffixFold(base, "-schema-view.sql"); ok {
		f.kind = kindView
		f.db, f.table, _ = strings.Cut(b, ".")
		return f, false
	}
	for _, suffix := range ignoredSchemas {
		if hasSuffixFold(base, suffix) {
			return f, false
		}
	}
	if b, ok := cutSuffixFold(base, "-schema.sql"); ok {
		f.kind = kindTableSchema
		f.db, f.table, ok = strings.Cut(b, ".")
		return f, ok && f.db != "" && f.table != "" && !strings.Contains(f.table, ".")
	}
	switch {
	case hasSuffixFold(base, ".csv"):
		f.format = FormatCSV
	case hasSuffixFold(base, ".sql"):
		f.format = FormatSQL
	case hasSuffixFold(base, ".parquet") && comp == CompressionNone:
		f.format = FormatParquet
	default:
		return f, false
	}
	base = base[:strings.LastIndexByte(base, '.')]
	f.db, base, ok = strings.Cut(base, ".")
	f.table, _, _ = strings.Cut(base, ".")
	return f, ok && f.db != "" && f.table != ""
}

// cannotRead says why a file name classify rejected still looks like a
// table's data file, <db>.<table>[.<part>].<ext>[.<compression>], that
// storm cannot read; "" when it does not look like one (metadata, the
// schemas of views and triggers, names with fewer than three parts).
func cannotRead(name string) string {
	base, comp := trimCompression(name)
	if strings.Contains(base, "-schema") {
		return ""
	}
	if hasSuffixFold(base, ".parquet") && comp != CompressionNone {
		return "a Parquet file compresses its own pages: storm reads it only as it is, not wrapped in gzip or zstd"
	}
	parts := strings.Split(base, ".")
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" {
		return ""
	}
	ext := strings.ToLower(parts[len(parts)-1])
	if len(parts) >= 4 {
		if prev := strings.ToLower(parts[len(parts)-2]); knownFormats[prev] {
			return fmt.Sprintf("compression .%s is not supported: gz and zst are", ext)
		}
	}
	return fmt.Sprintf("format .%s is not supported: csv, sql and parquet are", ext)
}

// knownFormats are the data file extensions storm reads.
var knownFormats = map[string]bool{"csv": true, "sql": true, "parquet": true}

func trimCompression(name string) (string, Compression) {
	if b, ok := cutSuffixFold(name, ".gz"); ok {
		return b, CompressionGzip
	}
	if b, ok := cutSuffixFold(name, ".zst"); ok {
		return b, CompressionZstd
	}
	return name, CompressionNone
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

func cutSuffixFold(s, suffix string) (string, bool) {
	if !hasSuffixFold(s, suffix) {
		return s, false
	}
	return s[:len(s)-len(suffix)], true
}
