package source

import (
	"fmt"
	"regexp"
	"strings"
)

// Route is one [[source.files]] rule: which files of a dump hold what, for
// dumps that do not follow the mydumper naming (as TiDB Lightning's
// [[mydumper.files]]). Pattern is a regular expression (Go syntax, not
// anchored unless it says so) matched against the file's path relative to
// the source directory, with "/" between directories. Schema, Table, Type and
// Compression are templates expanded with the match: $1, ${1}, ${name}
// (write ${1} when a letter, digit or "_" follows).
type Route struct {
	Pattern string `json:"pattern" mapstructure:"pattern"`
	Schema  string `json:"schema,omitempty" mapstructure:"schema"` // the target database
	Table   string `json:"table,omitempty" mapstructure:"table"`
	// Type: csv | sql | parquet (rows), schema (CREATE DATABASE; also "schema-schema"),
	// table-schema (CREATE TABLE) or ignore (skip the file).
	Type string `json:"type" mapstructure:"type"`
	// Compression: gz | gzip | zst | zstd | none; empty: from the file's
	// suffix (.gz, .zst), as with the mydumper naming.
	Compression string `json:"compression,omitempty" mapstructure:"compression"`
}

// Route types.
const (
	RouteCSV         = "csv"
	RouteSQL         = "sql"
	RouteParquet     = "parquet"
	RouteSchema      = "schema"
	RouteTableSchema = "table-schema"
	RouteIgnore      = "ignore"
)

// routeTypes are the values a rule's Type may expand to, with what they mean.
var routeTypes = map[string]string{
	RouteCSV: RouteCSV, RouteSQL: RouteSQL, RouteParquet: RouteParquet, RouteSchema: RouteSchema, "schema-schema": RouteSchema,
	RouteTableSchema: RouteTableSchema, RouteIgnore: RouteIgnore,
}

// routeCompressions are the values a rule's Compression may expand to; ""
// means from the file's suffix.
var routeCompressions = map[string]Compression{
	"gz": CompressionGzip, "gzip": CompressionGzip, "zst": CompressionZstd, "zstd": CompressionZstd,
	"none": CompressionNone,
}

// compiledRoute is a Route ready to match.
type compiledRoute struct {
	Route
	n  int // 1-based, as the rule is named in errors
	re *regexp.Regexp
}

// CheckRoutes validates rules as a config is loaded: the patterns compile,
// and the fields that are not templates hold valid values. Rules count from
// 1 in the errors, in the order of the config file.
func CheckRoutes(routes []Route) error {
	_, err := compileRoutes(routes)
	return err
}

func compileRoutes(routes []Route) ([]compiledRoute, error) {
	out := make([]compiledRoute, 0, len(routes))
	var bad []string
	for i, r := range routes {
		c, err := compileRoute(i+1, r)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		out = append(out, c)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return out, nil
}

func compileRoute(n int, r Route) (compiledRoute, error) {
	c := compiledRoute{Route: r, n: n}
	name := fmt.Sprintf("source.files rule #%d (pattern %q)", n, r.Pattern)
	if r.Pattern == "" {
		return c, fmt.Errorf("%s: no pattern", name)
	}
	re, err := regexp.Compile(r.Pattern)
	if err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	c.re = re
	typ := strings.ToLower(strings.TrimSpace(r.Type))
	switch {
	case typ == "":
		return c, fmt.Errorf("%s: no type (csv, sql, parquet, schema, table-schema or ignore)", name)
	case !strings.Contains(typ, "$"):
		if _, ok := routeTypes[typ]; !ok {
			return c, fmt.Errorf("%s: type %q: want csv, sql, parquet, schema, table-schema or ignore", name, r.Type)
		}
	}
	comp := strings.ToLower(strings.TrimSpace(r.Compression))
	if comp != "" && !strings.Contains(comp, "$") {
		if _, ok := routeCompressions[comp]; !ok {
			return c, fmt.Errorf("%s: compression %q: want gz, zst, none or empty", name, r.Compression)
		}
	}
	if routeTypes[typ] != RouteIgnore && strings.TrimSpace(r.Schema) == "" {
		return c, fmt.Errorf("%s: no schema (the target database, e.g. \"$1\")", name)
	}
	switch routeTypes[typ] {
	case RouteCSV, RouteSQL, RouteParquet, RouteTableSchema:
		if strings.TrimSpace(r.Table) == "" {
			return c, fmt.Errorf("%s: no table (e.g. \"$2\")", name)
		}
	}
	return c, nil
}

// routed is what a rule says about one file.
type routed struct {
	rule      *compiledRoute
	kind      string // a Route type, expanded
	db, table string
	format    Format
	comp      Compression
}

// route returns the first rule that matches rel (a "/"-separated path
// relative to the source directory) and what it says; rule is nil when no
// rule matches. A rule that matches but expands to nonsense (an unknown
// type, no table name) is an error naming the file and the rule.
func route(rules []compiledRoute, rel string) (routed, error) {
	for i := range rules {
		r := &rules[i]
		m := r.re.FindStringSubmatchIndex(rel)
		if m == nil {
			continue
		}
		expand := func(tmpl string) string {
			return strings.TrimSpace(string(r.re.ExpandString(nil, tmpl, rel, m)))
		}
		out := routed{rule: r}
		fail := func(format string, args ...any) (routed, error) {
			return out, fmt.Errorf("%s: source.files rule #%d (pattern %q): %s", rel, r.n, r.Pattern, fmt.Sprintf(format, args...))
		}
		typ := strings.ToLower(expand(r.Type))
		kind, ok := routeTypes[typ]
		if !ok {
			return fail("type %q (from %q): want csv, sql, parquet, schema, table-schema or ignore", typ, r.Type)
		}
		out.kind = kind
		if kind == RouteIgnore {
			return out, nil
		}
		out.db = expand(r.Schema)
		if out.db == "" {
			return fail("schema %q expands to an empty name", r.Schema)
		}
		if kind != RouteSchema {
			out.table = expand(r.Table)
			if out.table == "" {
				return fail("table %q expands to an empty name", r.Table)
			}
		}
		switch comp := strings.ToLower(expand(r.Compression)); comp {
		case "":
			_, out.comp = trimCompression(rel)
		default:
			c, ok := routeCompressions[comp]
			if !ok {
				return fail("compression %q (from %q): want gz, zst, none or empty", comp, r.Compression)
			}
			out.comp = c
		}
		switch kind {
		case RouteCSV:
			out.format = FormatCSV
		case RouteSQL:
			out.format = FormatSQL
		case RouteParquet:
			if out.comp != CompressionNone {
				return fail("a Parquet file compresses its own pages: storm reads it only as it is, not wrapped in gzip or zstd")
			}
			out.format = FormatParquet
		}
		return out, nil
	}
	return routed{}, nil
}
