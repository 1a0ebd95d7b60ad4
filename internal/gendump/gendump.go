// Package gendump writes a deterministic mydumper-layout dump (CSV and/or SQL
// data files) for the tests, demo and benchmarks of the importer, and
// regenerates the rows a MariaDB target must hold afterwards without reading
// the files, as the text protocol returns them, so tests can compare the
// target row by row.
//
// Every value is generated in the exact text form MariaDB prints for its
// column, so the decoded field of a data file, the value sent to the server
// and the value read back are the same bytes: a mismatch is always an
// importer bug, never a normalisation question.
package gendump

import (
	"bufio"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Options say what to generate.
type Options struct {
	Dir           string   // output directory (created if missing)
	DB            string   // database name; default "storm_demo" if empty
	Rows          int      // TOTAL rows over all selected tables (split by fixed weights, each selected table gets >= 1 row when Rows >= number of tables)
	Seed          int64    // same options+seed => byte-identical files
	Format        string   // "csv", "sql", or "mixed" ("" means "csv"): mixed alternates formats between files of a table (file 0 csv, file 1 sql, ...) and, for single-file tables, between tables
	FilesPerTable int      // data files per table (default 1 if < 1); rows are split into contiguous ranges
	Header        bool     // CSV files start with a header line of column names
	Tables        []string // subset of table names; nil/empty = all tables
	// IDOffset shifts every row number (ids, sequence numbers), so dumps
	// of one database made as shards of it (one per host) can be merged
	// into the same tables without key clashes.
	IDOffset int64
}

// TableInfo describes one generated table.
type TableInfo struct {
	Name    string
	Columns []string // in schema order
	PK      []string // primary key columns; nil if the table has none
	// Schema is the CREATE TABLE statement of its schema file.
	Schema string
}

// Stats of a Generate run. Files and Bytes count the data files only, since
// those are what an import benchmark moves.
type Stats struct {
	Files int
	Rows  int64
	Bytes int64
}

// DefaultDB is the database name used when Options.DB is empty.
const DefaultDB = "storm_demo"

const (
	formatCSV   = "csv"
	formatSQL   = "sql"
	formatMixed = "mixed"
)

// Generate writes the dump described by o into o.Dir. Existing files of the
// same names are overwritten; other files in o.Dir are left alone. Tables
// are written concurrently, each from its own random stream, so the output
// does not depend on scheduling.
func Generate(o Options) (Stats, error) {
	o, err := normalize(o)
	if err != nil {
		return Stats{}, err
	}
	sel, err := selectTables(o.Tables)
	if err != nil {
		return Stats{}, err
	}
	if o.Dir == "" {
		return Stats{}, errors.New("gendump: no output directory (Options.Dir)")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return Stats{}, fmt.Errorf("gendump: create dump directory %s: %w", o.Dir, err)
	}
	dbFile := filepath.Join(o.Dir, o.DB+"-schema-create.sql")
	if err := writeSmall(dbFile, "CREATE DATABASE IF NOT EXISTS `"+o.DB+"` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;\n"); err != nil {
		return Stats{}, err
	}
	counts := rowCounts(o.Rows, sel)
	stats := make([]Stats, len(sel))
	errs := make([]error, len(sel))
	var wg sync.WaitGroup
	for i, t := range sel {
		wg.Go(func() { stats[i], errs[i] = writeTable(o, t, counts[i]) })
	}
	wg.Wait()
	var total Stats
	for i := range sel {
		if errs[i] != nil {
			// The first table in the fixed order, so the error does not
			// depend on which goroutine failed first.
			return total, errs[i]
		}
		total.Files += stats[i].Files
		total.Rows += stats[i].Rows
		total.Bytes += stats[i].Bytes
	}
	return total, nil
}

// Tables returns the selected tables in the fixed order; unknown names are
// skipped (Generate and ExpectedRows report them).
func Tables(o Options) []TableInfo {
	var out []TableInfo
	for _, t := range allTables {
		if len(o.Tables) > 0 && !contains(o.Tables, t.name) {
			continue
		}
		ti := TableInfo{Name: t.name, Columns: make([]string, len(t.cols)), Schema: t.createTable()}
		for i, c := range t.cols {
			ti.Columns[i] = c.name
		}
		if len(t.pk) > 0 {
			ti.PK = append([]string(nil), t.pk...)
		}
		out = append(out, ti)
	}
	return out
}

// ExpectedRows calls fn for each row of table in generation order; each value
// is the text MariaDB returns for the column (nil = SQL NULL). fn's slice may
// be reused between calls; the strings it points to are not.
func ExpectedRows(o Options, table string, fn func([]*string) error) error {
	o, err := normalize(o)
	if err != nil {
		return err
	}
	sel, err := selectTables(o.Tables)
	if err != nil {
		return err
	}
	idx := -1
	for i, t := range sel {
		if t.name == table {
			idx = i
		}
	}
	if idx < 0 {
		if lookup(table) == nil {
			return fmt.Errorf("gendump: unknown table %q", table)
		}
		return fmt.Errorf("gendump: table %q is not among the selected tables %v", table, o.Tables)
	}
	t := sel[idx]
	n := rowCounts(o.Rows, sel)[idx]
	g := newGen(o, t)
	vals := make([]*string, len(t.cols))
	for i := range n {
		g.next(i)
		strs := make([]string, len(t.cols))
		start := 0
		for c, end := range g.row.ends {
			if g.row.kinds[c] == kindNull {
				vals[c] = nil
			} else {
				strs[c] = string(g.row.buf[start:end])
				vals[c] = &strs[c]
			}
			start = end
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	return nil
}

func normalize(o Options) (Options, error) {
	if o.DB == "" {
		o.DB = DefaultDB
	}
	// Discover splits file names at dots, and the name is pasted into
	// file names and backquoted SQL.
	if strings.ContainsAny(o.DB, "./\\`\x00") {
		return o, fmt.Errorf("gendump: database name %q must not contain '.', '/', '\\', '`' or NUL", o.DB)
	}
	switch o.Format {
	case "":
		o.Format = formatCSV
	case formatCSV, formatSQL, formatMixed:
	default:
		return o, fmt.Errorf("gendump: unknown format %q (want csv, sql or mixed)", o.Format)
	}
	if o.FilesPerTable < 1 {
		o.FilesPerTable = 1
	}
	if o.Rows < 0 {
		o.Rows = 0
	}
	return o, nil
}

func selectTables(names []string) ([]*table, error) {
	for _, n := range names {
		if lookup(n) == nil {
			return nil, fmt.Errorf("gendump: unknown table %q", n)
		}
	}
	var out []*table
	for _, t := range allTables {
		if len(names) == 0 || contains(names, t.name) {
			out = append(out, t)
		}
	}
	return out, nil
}

func lookup(name string) *table {
	for _, t := range allTables {
		if t.name == name {
			return t
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// rowCounts splits rows over the tables by weight. The remainder of the
// floor division goes one row each to the first tables; then any table left
// empty takes a row from the largest, so that every table is exercised
// whenever there are enough rows.
func rowCounts(rows int, tables []*table) []int64 {
	counts := make([]int64, len(tables))
	if len(tables) == 0 {
		return counts
	}
	var wsum, sum int64
	for _, t := range tables {
		wsum += t.weight
	}
	for i, t := range tables {
		counts[i] = int64(rows) * t.weight / wsum
		sum += counts[i]
	}
	for i := 0; sum < int64(rows); i++ {
		counts[i]++
		sum++
	}
	if rows >= len(tables) {
		for i := range counts {
			if counts[i] > 0 {
				continue
			}
			big := 0
			for j := range counts {
				if counts[j] > counts[big] {
					big = j
				}
			}
			counts[big]--
			counts[i]++
		}
	}
	return counts
}

// newGen starts the random stream of one table. Seeding from the table name
// keeps a table's rows the same whichever other tables are selected.
func newGen(o Options, t *table) *gen {
	h := fnv.New64a()
	io.WriteString(h, t.name)
	return &gen{
		t:         t,
		r:         rand.New(rand.NewPCG(uint64(o.Seed), h.Sum64())),
		customers: max(1, int64(o.Rows)/5),
		offset:    o.IDOffset,
	}
}

// fileFormat is the format of data file k of the table at index ti of
// allTables.
func fileFormat(o Options, ti, k int) string {
	if o.Format != formatMixed {
		return o.Format
	}
	if o.FilesPerTable == 1 {
		k = ti
	}
	if k%2 == 0 {
		return formatCSV
	}
	return formatSQL
}

func tableIndex(t *table) int {
	for i, x := range allTables {
		if x == t {
			return i
		}
	}
	return -1
}

// writeTable writes the schema and data files of t. The files are written in
// order from one stream, since row i's values depend on the rows before it.
func writeTable(o Options, t *table, n int64) (Stats, error) {
	var st Stats
	schema := filepath.Join(o.Dir, o.DB+"."+t.name+"-schema.sql")
	if err := writeSmall(schema, t.createTable()); err != nil {
		return st, err
	}
	g := newGen(o, t)
	ti := tableIndex(t)
	csvFiles := 0
	files := int64(o.FilesPerTable)
	for k := range files {
		from, to := k*n/files, (k+1)*n/files
		if from == to {
			continue
		}
		format := fileFormat(o, ti, int(k))
		path := filepath.Join(o.Dir, fmt.Sprintf("%s.%s.%05d.%s", o.DB, t.name, k, format))
		var size int64
		var err error
		if format == formatCSV {
			csvFiles++
			// The second CSV file of a table ends its lines with CRLF, as a
			// dump made on Windows would, to exercise the reader's
			// terminator detection.
			size, err = writeFile(path, func(w *bufio.Writer) error {
				return writeCSV(w, g, from, to, o.Header, csvFiles == 2)
			})
		} else {
			size, err = writeFile(path, func(w *bufio.Writer) error {
				return writeSQL(w, g, from, to)
			})
		}
		if err != nil {
			return st, err
		}
		st.Files++
		st.Rows += to - from
		st.Bytes += size
	}
	return st, nil
}

// countingWriter counts the bytes that reach the file, for Stats.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func writeFile(path string, body func(*bufio.Writer) error) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("gendump: %w", err)
	}
	cw := &countingWriter{w: f}
	w := bufio.NewWriterSize(cw, 256<<10)
	err = body(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return cw.n, fmt.Errorf("gendump: write %s: %w", path, err)
	}
	return cw.n, nil
}

func writeSmall(path, text string) error {
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("gendump: write %s: %w", path, err)
	}
	return nil
}
