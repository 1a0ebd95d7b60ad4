package source

import (
	"fmt"
	"strconv"
	"strings"
)

// Index kinds as TableDef names them.
const (
	IndexPrimary  = "PRIMARY"
	IndexUnique   = "UNIQUE"
	IndexKey      = "KEY"
	IndexFulltext = "FULLTEXT"
	IndexSpatial  = "SPATIAL"
)

// Index is one index of a CREATE TABLE, named as the server names it: an
// unnamed key gets the name of its first column (then _2, _3, ...), as
// MySQL and MariaDB do, so the set compares with information_schema.
type Index struct {
	Name    string        `json:"name"`
	Kind    string        `json:"kind"`
	Columns []IndexColumn `json:"columns"`
	// Def is the clause to add it back with (ALTER TABLE ... ADD <Def>),
	// its options (USING, COMMENT, ...) as written, and always named.
	Def string `json:"def,omitempty"`
	// Deferred: a non-unique secondary index that storm leaves out while
	// the table is loaded and builds afterwards (import.defer-indexes).
	Deferred bool `json:"deferred,omitempty"`
}

// IndexColumn is one key part: a column and its prefix length (0: whole),
// or an expression (functional key part, MySQL 8), which Expr holds.
type IndexColumn struct {
	Name   string `json:"name,omitempty"`
	Prefix int    `json:"prefix,omitempty"`
	Expr   string `json:"expr,omitempty"`
}

// TableDef is what storm needs to know of a CREATE TABLE statement: its
// columns and its indexes.
type TableDef struct {
	Columns []string
	Indexes []Index
	// ForeignKeys are the column lists of the FOREIGN KEY constraints.
	ForeignKeys [][]string

	stmt  string
	open  int         // offset of the body's "("
	close int         // offset of its ")"
	parts []defPart   // the body's elements, in order
	byIdx map[int]int // index number -> part number
}

type defPart struct{ start, end int }

// ParseCreateTable reads the columns and indexes of a CREATE TABLE
// statement (as ReadSchema returns it, or SHOW CREATE TABLE).
func ParseCreateTable(stmt string) (*TableDef, error) {
	toks := tokenize(stmt)
	open := -1
	for i, t := range toks {
		if t.text == "(" {
			open = i
			break
		}
		if t.kind == tokWord && strings.EqualFold(t.text, "LIKE") {
			return nil, fmt.Errorf("CREATE TABLE ... LIKE: the indexes are another table's")
		}
	}
	if open < 0 {
		return nil, fmt.Errorf("no column list in the CREATE TABLE statement")
	}
	td := &TableDef{stmt: stmt, open: toks[open].pos, byIdx: map[int]int{}}
	depth, start := 0, open+1
	var elems [][]token
	for i := open; i < len(toks); i++ {
		switch toks[i].text {
		case "(":
			depth++
		case ")":
			depth--
		}
		if depth == 1 && toks[i].text == "," || depth == 0 {
			if i > start {
				elems = append(elems, toks[start:i])
				td.parts = append(td.parts, defPart{toks[start].pos, toks[i-1].pos + len(toks[i-1].text)})
			}
			start = i + 1
		}
		if depth == 0 {
			td.close = toks[i].pos
			break
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced parentheses in the CREATE TABLE statement")
	}
	names := map[string]bool{}
	for p, e := range elems {
		idx, fk, isCol, err := parseElement(e, stmt)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", clip(stmt[td.parts[p].start:td.parts[p].end]), err)
		}
		switch {
		case isCol != nil:
			td.Columns = append(td.Columns, isCol.name)
			for _, ix := range isCol.inline {
				td.addIndex(ix, -1, names)
			}
		case fk != nil:
			td.ForeignKeys = append(td.ForeignKeys, fk)
		case idx != nil:
			td.addIndex(*idx, p, names)
		}
	}
	return td, nil
}

// addIndex names an unnamed index as the server would and keeps it.
func (td *TableDef) addIndex(ix Index, part int, names map[string]bool) {
	if ix.Kind == IndexPrimary {
		ix.Name = IndexPrimary
	} else if ix.Name == "" {
		base := "expr"
		if len(ix.Columns) > 0 && ix.Columns[0].Name != "" {
			base = ix.Columns[0].Name
		}
		ix.Name = base
		for n := 2; names[strings.ToLower(ix.Name)] || strings.EqualFold(ix.Name, IndexPrimary); n++ {
			ix.Name = base + "_" + strconv.Itoa(n)
		}
		if ix.Def != "" {
			ix.Def = strings.Replace(ix.Def, "\x00", QuoteName(ix.Name)+" ", 1)
		}
	}
	ix.Def = strings.Replace(ix.Def, "\x00", "", 1)
	names[strings.ToLower(ix.Name)] = true
	if part >= 0 {
		td.byIdx[len(td.Indexes)] = part
	}
	td.Indexes = append(td.Indexes, ix)
}

// Defer marks the indexes storm may build after the load: non-unique
// secondary keys (KEY, FULLTEXT, SPATIAL) on columns only, except one that
// a FOREIGN KEY needs (its columns leading, and no kept index leads with
// them). A deferred key naming a column the table lacks is an error that
// names the key: the server would refuse it only after the load.
func (td *TableDef) Defer() error {
	for i := range td.Indexes {
		ix := &td.Indexes[i]
		if _, ok := td.byIdx[i]; !ok || ix.Kind == IndexPrimary || ix.Kind == IndexUnique {
			continue
		}
		expr := false
		for _, c := range ix.Columns {
			expr = expr || c.Expr != ""
		}
		ix.Deferred = !expr
	}
	for _, fk := range td.ForeignKeys {
		covered := -1
		for i, ix := range td.Indexes {
			if ix.Kind == IndexFulltext || ix.Kind == IndexSpatial || !leads(ix.Columns, fk) {
				continue
			}
			if !ix.Deferred {
				covered = -1
				break
			}
			if covered < 0 {
				covered = i
			}
		}
		if covered >= 0 {
			td.Indexes[covered].Deferred = false
		}
	}
	have := map[string]bool{}
	for _, c := range td.Columns {
		have[strings.ToLower(c)] = true
	}
	for _, ix := range td.Indexes {
		if !ix.Deferred {
			continue
		}
		for _, c := range ix.Columns {
			if !have[strings.ToLower(c.Name)] {
				return fmt.Errorf("key %s names column %s, which the table does not have", QuoteName(ix.Name), QuoteName(c.Name))
			}
		}
	}
	return nil
}

// leads says whether the key parts start with cols, whole columns.
func leads(parts []IndexColumn, cols []string) bool {
	if len(parts) < len(cols) {
		return false
	}
	for i, c := range cols {
		if parts[i].Expr != "" || parts[i].Prefix != 0 || !strings.EqualFold(parts[i].Name, c) {
			return false
		}
	}
	return true
}

// Deferred returns the deferred indexes.
func (td *TableDef) Deferred() []Index {
	var out []Index
	for _, ix := range td.Indexes {
		if ix.Deferred {
			out = append(out, ix)
		}
	}
	return out
}

// WithoutDeferred is the statement without its deferred index clauses.
func (td *TableDef) WithoutDeferred() string {
	drop := map[int]bool{}
	for i, ix := range td.Indexes {
		if ix.Deferred {
			drop[td.byIdx[i]] = true
		}
	}
	var keep []string
	for p, part := range td.parts {
		if !drop[p] {
			keep = append(keep, td.stmt[part.start:part.end])
		}
	}
	return td.stmt[:td.open+1] + "\n  " + strings.Join(keep, ",\n  ") + "\n" + td.stmt[td.close:]
}

// QuoteName quotes an identifier with backquotes.
func QuoteName(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

type column struct {
	name   string
	inline []Index
}

// parseElement reads one element of the table body: a column, an index,
// a foreign key, or something storm does not need (CHECK, PERIOD).
func parseElement(e []token, stmt string) (idx *Index, fk []string, col *column, err error) {
	i := 0
	word := func(j int, w ...string) bool {
		if j >= len(e) || e[j].kind != tokWord {
			return false
		}
		for _, x := range w {
			if strings.EqualFold(e[j].text, x) {
				return true
			}
		}
		return false
	}
	constraint := "" // CONSTRAINT <name>: a UNIQUE key without a name of its own takes it
	if word(0, "CONSTRAINT") {
		i = 1
		if i < len(e) && !word(i, "PRIMARY", "UNIQUE", "FOREIGN", "CHECK") {
			constraint = e[i].name()
			i++
		}
	}
	kind := ""
	switch {
	case word(i, "PRIMARY") && word(i+1, "KEY"):
		kind, i = IndexPrimary, i+2
	case word(i, "UNIQUE"):
		kind, i = IndexUnique, i+1
		if word(i, "KEY", "INDEX") {
			i++
		}
	case word(i, "FULLTEXT", "SPATIAL"):
		kind, i = strings.ToUpper(e[i].text), i+1
		if word(i, "KEY", "INDEX") {
			i++
		}
	case word(i, "KEY", "INDEX"):
		kind, i = IndexKey, i+1
	case word(i, "FOREIGN") && word(i+1, "KEY"):
		i += 2
		if i < len(e) && e[i].text != "(" {
			i++
		}
		parts, _, err := keyParts(e, i, stmt)
		if err != nil {
			return nil, nil, nil, err
		}
		for _, p := range parts {
			fk = append(fk, p.Name)
		}
		return nil, fk, nil, nil
	case word(i, "CHECK", "PERIOD"):
		return nil, nil, nil, nil
	}
	if kind == "" {
		if len(e) == 0 {
			return nil, nil, nil, fmt.Errorf("empty element")
		}
		c := &column{name: e[0].name()}
		// Inline PRIMARY KEY and UNIQUE [KEY] make indexes too.
		for j := 1; j < len(e); j++ {
			switch {
			case word(j, "PRIMARY") && word(j+1, "KEY"):
				c.inline = append(c.inline, Index{Kind: IndexPrimary, Columns: []IndexColumn{{Name: c.name}}})
			case word(j, "UNIQUE"):
				c.inline = append(c.inline, Index{Kind: IndexUnique, Columns: []IndexColumn{{Name: c.name}}})
			}
		}
		return nil, nil, c, nil
	}
	ix := &Index{Kind: kind}
	if i < len(e) && e[i].text != "(" && !word(i, "USING") {
		ix.Name = e[i].name()
		i++
	} else if kind != IndexPrimary {
		ix.Name = constraint
	}
	rest := i // USING or "(": what the clause keeps after its name
	if word(i, "USING") {
		i += 2
	}
	parts, _, err := keyParts(e, i, stmt)
	if err != nil {
		return nil, nil, nil, err
	}
	ix.Columns = parts
	if kind != IndexPrimary {
		head := IndexKey
		if kind == IndexFulltext || kind == IndexSpatial {
			head = kind + " KEY"
		}
		name := "\x00"
		if ix.Name != "" {
			name = QuoteName(ix.Name) + " "
		}
		last := e[len(e)-1]
		ix.Def = head + " " + name + stmt[e[rest].pos:last.pos+len(last.text)]
	}
	return ix, nil, nil, nil
}

// keyParts reads "(part, ...)" at e[i].
func keyParts(e []token, i int, stmt string) ([]IndexColumn, int, error) {
	if i >= len(e) || e[i].text != "(" {
		return nil, i, fmt.Errorf("no key part list")
	}
	var out []IndexColumn
	i++
	for i < len(e) {
		var p IndexColumn
		switch {
		case e[i].text == "(":
			// An expression: up to its closing parenthesis.
			depth, j := 0, i
			for ; j < len(e); j++ {
				if e[j].text == "(" {
					depth++
				} else if e[j].text == ")" {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			if j == len(e) {
				return nil, j, fmt.Errorf("unbalanced key part")
			}
			p.Expr = stmt[e[i].pos : e[j].pos+1]
			i = j + 1
		case e[i].kind == tokWord || e[i].kind == tokQuoted:
			p.Name = e[i].name()
			i++
			if i+2 < len(e) && e[i].text == "(" && e[i+2].text == ")" {
				n, err := strconv.Atoi(e[i+1].text)
				if err != nil {
					return nil, i, fmt.Errorf("prefix length %q of %s", e[i+1].text, p.Name)
				}
				p.Prefix = n
				i += 3
			}
		default:
			return nil, i, fmt.Errorf("unexpected %q in a key part list", e[i].text)
		}
		for i < len(e) && (e[i].kind == tokWord || e[i].kind == tokComment) { // ASC, DESC
			i++
		}
		out = append(out, p)
		if i < len(e) && e[i].text == "," {
			i++
			continue
		}
		if i < len(e) && e[i].text == ")" {
			return out, i + 1, nil
		}
		return nil, i, fmt.Errorf("unterminated key part list")
	}
	return nil, i, fmt.Errorf("unterminated key part list")
}

type tokKind int

const (
	tokWord   tokKind = iota
	tokQuoted         // `name` or "name"
	tokString         // 'text'
	tokPunct
	tokComment // a versioned comment, kept whole
)

type token struct {
	kind tokKind
	text string
	pos  int
}

// name is the identifier a word or quoted token stands for.
func (t token) name() string {
	if t.kind != tokQuoted {
		return t.text
	}
	q := t.text[:1]
	return strings.ReplaceAll(t.text[1:len(t.text)-1], q+q, q)
}

// tokenize splits SQL text into words, quoted names, strings, comments and
// single punctuation characters. Plain comments are dropped.
func tokenize(s string) []token {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c <= ' ':
			i++
		case c == '`' || c == '"':
			j := quotedEnd(s, i)
			out = append(out, token{tokQuoted, s[i:j], i})
			i = j
		case c == '\'':
			j := quotedEnd(s, i)
			out = append(out, token{tokString, s[i:j], i})
			i = j
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			j := strings.Index(s[i+2:], "*/")
			end := len(s)
			if j >= 0 {
				end = i + 4 + j
			}
			if strings.HasPrefix(s[i:], "/*!") || strings.HasPrefix(s[i:], "/*M!") {
				out = append(out, token{tokComment, s[i:end], i})
			}
			i = end
		case c == '#' || c == '-' && strings.HasPrefix(s[i:], "--"):
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				j = len(s) - i
			}
			i += j
		case isWordChar(c) || c >= 0x80:
			j := i
			for j < len(s) && (isWordChar(s[j]) || s[j] >= 0x80) {
				j++
			}
			out = append(out, token{tokWord, s[i:j], i})
			i = j
		default:
			out = append(out, token{tokPunct, s[i : i+1], i})
			i++
		}
	}
	return out
}
