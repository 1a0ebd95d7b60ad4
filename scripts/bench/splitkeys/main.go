// Command splitkeys prepares the by-hand deferred-index baseline of the
// bench (scripts/bench/run.sh, load-data-deferred): from a schema file it
// writes the CREATE TABLE without the table's non-unique secondary indexes
// and the one ALTER TABLE that adds them all back, as a careful DBA would
// before and after a LOAD DATA.
//
//	splitkeys -schema DUMP/db.t-schema.sql -table t -create OUT.sql -alter OUT.sql
//
// The primary key, UNIQUE keys and foreign keys stay in the CREATE TABLE.
// KEY, INDEX, FULLTEXT and SPATIAL clauses move to the ALTER TABLE. It reads
// the layout mydumper, mariadb-dump and SHOW CREATE TABLE write (one clause
// per line), which is what the bench's dumps hold; a file with no
// secondary index gives an empty ALTER file.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
)

func main() {
	schema := flag.String("schema", "", "schema file (CREATE TABLE, one clause a line)")
	table := flag.String("table", "", "the table's name, for the ALTER TABLE")
	create := flag.String("create", "", "write the CREATE TABLE without secondary indexes here")
	alter := flag.String("alter", "", "write the ALTER TABLE that adds them here (empty if none)")
	flag.Parse()
	if *schema == "" || *table == "" || *create == "" || *alter == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*schema, *table, *create, *alter); err != nil {
		fmt.Fprintln(os.Stderr, "splitkeys:", err)
		os.Exit(1)
	}
}

func run(schema, table, createOut, alterOut string) error {
	b, err := os.ReadFile(schema)
	if err != nil {
		return err
	}
	create, keys, err := split(string(b))
	if err != nil {
		return fmt.Errorf("%s: %w", schema, err)
	}
	alter := ""
	if len(keys) > 0 {
		alter = "ALTER TABLE `" + strings.ReplaceAll(table, "`", "``") + "` " + strings.Join(addAll(keys), ", ") + ";\n"
	}
	if err := os.WriteFile(createOut, []byte(create), 0o644); err != nil {
		return err
	}
	return os.WriteFile(alterOut, []byte(alter), 0o644)
}

var (
	deferred    = regexp.MustCompile(`(?i)^(KEY|INDEX|FULLTEXT|SPATIAL)\b`)
	createTable = regexp.MustCompile(`(?i)^\s*CREATE\s+TABLE\b`)
)

// split returns the schema text without its secondary index clauses, and
// those clauses.
func split(schema string) (string, []string, error) {
	lines := strings.Split(schema, "\n")
	start := -1
	for i, l := range lines {
		if createTable.MatchString(l) {
			start = i
			break
		}
	}
	if start < 0 {
		return "", nil, errors.New("no CREATE TABLE")
	}
	end := -1
	for i := start + 1; i < len(lines); i++ {
		if strings.HasPrefix(strings.TrimSpace(lines[i]), ")") {
			end = i
			break
		}
	}
	if end < 0 {
		return "", nil, errors.New("no line closing the CREATE TABLE's clauses")
	}
	var keep, keys []string
	for _, l := range lines[start+1 : end] {
		clause := strings.TrimSuffix(strings.TrimSpace(l), ",")
		if clause == "" {
			continue
		}
		if deferred.MatchString(clause) {
			keys = append(keys, clause)
			continue
		}
		keep = append(keep, strings.TrimSuffix(strings.TrimRight(l, " \t\r"), ","))
	}
	for i := range keep[:max(len(keep)-1, 0)] {
		keep[i] += ","
	}
	out := append(append(append([]string{}, lines[:start+1]...), keep...), lines[end:]...)
	return strings.Join(out, "\n"), keys, nil
}

// addAll turns index clauses into ALTER TABLE ADD clauses.
func addAll(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = "ADD " + k
	}
	return out
}
