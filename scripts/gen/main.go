// Command gen writes a deterministic demo/benchmark dump with
// storm/internal/gendump.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"storm/internal/gendump"
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
	st, err := gendump.Generate(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Printf("gen: %d files, %d rows, %.1f MB in %s in %.2fs\n",
		st.Files, st.Rows, float64(st.Bytes)/1e6, o.Dir, time.Since(start).Seconds())
}
