// Command gen writes a deterministic demo/benchmark dump with
// storm/internal/gendump.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"storm/internal/gendump"
	"storm/internal/parquetgen"
)

func main() {
	var o gendump.Options
	var tables string
	flag.StringVar(&o.Dir, "dir", "dump", "output directory (created if missing)")
	flag.IntVar(&o.Rows, "rows", 100000, "total rows over all tables")
	flag.StringVar(&o.Format, "format", "csv", "data file format: csv, sql or mixed")
	flag.IntVar(&o.FilesPerTable, "files", 1, "data files per table")
	flag.BoolVar(&o.Header, "header", true, "write a header line in CSV files")
	flag.StringVar(&o.DB, "db", gendump.DefaultDB, "database name")
	flag.Int64Var(&o.Seed, "seed", 1, "random seed: same flags and seed give the same files")
	flag.StringVar(&tables, "tables", "", "comma-separated subset of tables (default all)")
	pqTable := flag.String("parquet-table", "", "write only this table, as its schema and one Parquet file of text columns "+
		"holding the rows the same flags write as CSV")
	rowGroup := flag.Int("row-group", 131072, "rows per Parquet row group (-parquet-table)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "gen: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	for _, t := range strings.Split(tables, ",") {
		if t = strings.TrimSpace(t); t != "" {
			o.Tables = append(o.Tables, t)
		}
	}
	start := time.Now()
	if *pqTable != "" {
		rows, err := writeParquet(o, *pqTable, *rowGroup)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		fmt.Printf("gen: table %s as Parquet, %d rows, in %s in %.2fs\n", *pqTable, rows, o.Dir, time.Since(start).Seconds())
		return
	}
	st, err := gendump.Generate(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Printf("gen: %d files, %d rows, %.1f MB in %s in %.2fs\n",
		st.Files, st.Rows, float64(st.Bytes)/1e6, o.Dir, time.Since(start).Seconds())
}

// writeParquet writes table's schema and its rows as one Parquet file
// (snappy, text columns) into o.Dir: the rows Generate writes as CSV.
func writeParquet(o gendump.Options, table string, rowGroup int) (int64, error) {
	schemaOnly := o
	schemaOnly.Rows, schemaOnly.Tables, schemaOnly.Dir = 0, []string{table}, filepath.Join(o.Dir, ".schema")
	if _, err := gendump.Generate(schemaOnly); err != nil {
		return 0, err
	}
	defer os.RemoveAll(schemaOnly.Dir)
	name := o.DB + "." + table + "-schema.sql"
	if err := os.Rename(filepath.Join(schemaOnly.Dir, name), filepath.Join(o.Dir, name)); err != nil {
		return 0, err
	}
	var cols []string
	for _, t := range gendump.Tables(o) {
		if t.Name == table {
			cols = t.Columns
		}
	}
	w, err := parquetgen.NewStringWriter(filepath.Join(o.Dir, o.DB+"."+table+".00000.parquet"), cols, rowGroup, "snappy")
	if err != nil {
		return 0, err
	}
	var rows int64
	err = gendump.ExpectedRows(o, table, func(vals []*string) error {
		rows++
		return w.Add(vals)
	})
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return rows, err
}
