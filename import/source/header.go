package source

import (
	"fmt"
	"strings"
)

// DetectHeader reads the first record of a CSV file and says whether it is
// a header, for source.csv.header = "auto": it is when every field is the
// name of one of columns (in any order, quoted or not, case-insensitive),
// and data when none is. A record of which some fields are names and some
// are not is an error naming those that are not: a header with a typo and
// a data row that happens to hold a column's name look alike, and guessing
// would load a header as a row or drop a row as a header. An empty file
// has no header.
func DetectHeader(f DataFile, cfg CSVConfig, columns []string) (bool, error) {
	in, closeFn, err := openStream(f.Path, f.Compression)
	if err != nil {
		return false, err
	}
	defer closeFn()
	cfg.Header = false
	var p csvParser
	p.init(f.Path, cfg)
	p.s.reset(in, 0)
	p.line = 1
	kind, err := p.readRecord(false)
	if err != nil {
		return false, fmt.Errorf("first line: %w", err)
	}
	if kind != recRow {
		return false, nil // empty, or a blank first line: no header
	}
	names := make(map[string]bool, len(columns))
	for _, c := range columns {
		names[strings.ToLower(c)] = true
	}
	var match, other []string
	from := 0
	for i, e := range p.ends {
		field := string(p.data[from:e])
		from = e
		switch {
		case p.nulls[i]:
			other = append(other, "NULL")
		case names[strings.ToLower(field)]:
			match = append(match, field)
		default:
			other = append(other, fmt.Sprintf("%q", field))
		}
	}
	switch {
	case len(other) == 0:
		return true, nil
	case len(match) == 0:
		return false, nil
	}
	return false, fmt.Errorf("%s:1: with source.csv.header = \"auto\", the first line is neither a header nor data: "+
		"%s name columns of the table, %s do not (a misspelt header, or a row holding a column's name: "+
		"fix the file, or set source.csv.header to true or false)", f.Path, strings.Join(match, ", "), strings.Join(other, ", "))
}
