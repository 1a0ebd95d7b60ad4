package source

import (
	"fmt"
	"strings"
)

// ReadSchemaNamed is ReadSchema, with the name of the database or table the
// CREATE statement makes replaced by name when it differs: a schema file
// routed by a [[source.files]] rule to another database or table creates
// the object that the rows go to (as Lightning's routes do). A CREATE TABLE
// loses its database qualifier ("`db`.`t`" becomes "`name`"): schema
// statements run with the table's database as the current one. Other CREATE
// statements (a view, say) come back unchanged.
func ReadSchemaNamed(path, name string) (string, error) {
	stmt, err := ReadSchema(path)
	if err != nil {
		return "", err
	}
	out, err := renameCreate(stmt, name)
	if err != nil {
		return "", fmt.Errorf("schema file %s: %w", path, err)
	}
	return out, nil
}

// renameCreate gives the object of a CREATE DATABASE, SCHEMA or TABLE
// statement the name name.
func renameCreate(stmt, name string) (string, error) {
	t := headTokens{s: stmt}
	if w, _ := t.next(); !strings.EqualFold(w, "CREATE") {
		return stmt, nil
	}
	kind := ""
	for kind == "" {
		w, q := t.next()
		switch {
		case q || w == "":
			return stmt, nil
		case strings.EqualFold(w, "OR"), strings.EqualFold(w, "REPLACE"), strings.EqualFold(w, "TEMPORARY"):
		case strings.EqualFold(w, "TABLE"):
			kind = "table"
		case strings.EqualFold(w, "DATABASE"), strings.EqualFold(w, "SCHEMA"):
			kind = "database"
		default:
			return stmt, nil // CREATE VIEW, ALGORITHM=..., DEFINER=...: not ours to rename
		}
	}
	// [IF NOT EXISTS] name[.name]; a versioned comment around IF NOT EXISTS
	// is skipped like any comment.
	for {
		t.skip()
		start := t.i
		w, q := t.next()
		if w == "" {
			return "", fmt.Errorf("no %s name found after CREATE %s", kind, strings.ToUpper(kind))
		}
		if !q && (strings.EqualFold(w, "IF") || strings.EqualFold(w, "NOT") || strings.EqualFold(w, "EXISTS")) {
			continue
		}
		if !q && !isNameByte(w[0]) {
			return "", fmt.Errorf("no %s name found after CREATE %s", kind, strings.ToUpper(kind))
		}
		if kind == "table" {
			if dot, _ := t.peek(); dot == "." {
				t.next()
				if tb, _ := t.next(); tb == "" {
					return "", fmt.Errorf("no table name found after %q.", w)
				}
			}
		}
		if span := stmt[start:t.i]; span == quoteName(name) || span == name {
			return stmt, nil // already so named, unqualified
		}
		return stmt[:start] + quoteName(name) + stmt[t.i:], nil
	}
}
