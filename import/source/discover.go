package source

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
	Path        string
	Size        int64 // on disk, so compressed when Compression is set
	Format      Format
	Compression Compression
}

// ignoredSchemas are the schema files of objects that are not tables.
var ignoredSchemas = []string{"-schema-triggers.sql", "-schema-post.sql", "-schema-sequence.sql"}

// Discover lists the databases, tables and data files of a mydumper or
// Dumpling dump in dir (not its subdirectories):
//
//	<db>-schema-create.sql       CREATE DATABASE
//	<db>.<table>-schema.sql      CREATE TABLE
//	<db>.<table>[.<part>].csv    rows; also .sql, and either with .gz or .zst
//
// Names are split at their first two dots, so database and table names must
// not contain dots. Everything else, such as metadata and the schemas of
// views and triggers, is listed in Skipped. So is the placeholder
// <db>.<view>-schema.sql (a CREATE TABLE with the view's columns) that
// mydumper and Dumpling write next to <db>.<view>-schema-view.sql: creating
// it would leave a table where the source had a view. The result is sorted.
func Discover(dir string) (*Layout, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read dump directory %s: %w", dir, err)
	}
	l := &Layout{Dir: dir}
	dbs := map[string]*Database{}
	tables := map[[2]string]*Table{}
	views := map[[2]string]bool{}
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
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() {
			if e.Type()&os.ModeSymlink == 0 {
				l.Skipped = append(l.Skipped, name)
				continue
			}
			// A symlink counts when it leads to a regular file.
			if st, err := os.Stat(filepath.Join(dir, name)); err != nil || !st.Mode().IsRegular() {
				l.Skipped = append(l.Skipped, name)
				continue
			}
		}
		path := filepath.Join(dir, name)
		f, ok := classify(name)
		switch {
		case !ok:
			if f.kind == kindView {
				views[[2]string{f.db, f.table}] = true
			}
			l.Skipped = append(l.Skipped, name)
		case f.kind == kindDBSchema:
			db(f.db).SchemaFile = path
		case f.kind == kindTableSchema:
			table(f.db, f.table).SchemaFile = path
		default:
			info, err := os.Stat(path)
			if err != nil {
				return nil, fmt.Errorf("discover %s: %w", path, err)
			}
			t := table(f.db, f.table)
			t.Files = append(t.Files, DataFile{Path: path, Size: info.Size(), Format: f.format, Compression: f.comp})
		}
	}
	for _, d := range dbs {
		l.Databases = append(l.Databases, *d)
	}
	sort.Slice(l.Databases, func(i, j int) bool { return l.Databases[i].Name < l.Databases[j].Name })
	for k, t := range tables {
		if views[k] && len(t.Files) == 0 && t.SchemaFile != "" {
			l.Skipped = append(l.Skipped, filepath.Base(t.SchemaFile))
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
	default:
		return f, false
	}
	base = base[:len(base)-4]
	f.db, base, ok = strings.Cut(base, ".")
	f.table, _, _ = strings.Cut(base, ".")
	return f, ok && f.db != "" && f.table != ""
}

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
