package source

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
)

// oneTableCheck is an SQL data file that a routing rule sends to one table
// and whose name does not promise that it holds one table's rows.
type oneTableCheck struct {
	path      string
	comp      Compression
	db, table string
	rule      int
}

// checkOneTable reads the files through, a few at a time, and returns the
// error of the first file (in the order given) that holds INSERT statements
// into more than one table.
func checkOneTable(files []oneTableCheck) error {
	if len(files) == 0 {
		return nil
	}
	errs := make([]error, len(files))
	sem := make(chan struct{}, max(1, min(runtime.GOMAXPROCS(0), 8)))
	var wg sync.WaitGroup
	for i, f := range files {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = f.run()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (f oneTableCheck) run() error {
	in, closeFn, err := openStream(f.path, f.comp)
	if err != nil {
		return err
	}
	defer closeFn()
	first, firstLine := "", int64(0)
	return scanInserts(in, f.path, func(table string, line int64) error {
		switch {
		case first == "":
			first, firstLine = table, line
		case table != first:
			return fmt.Errorf("%s:%d: INSERT into table %s, but the file's first INSERT (line %d) is into %s: "+
				"it is routed to %s.%s by source.files rule #%d, and a routed data file must hold the rows of one table "+
				"(dump one table per file, e.g. mariadb-dump <db> <table>)",
				f.path, line, quoteName(table), firstLine, quoteName(first), quoteName(f.db), quoteName(f.table), f.rule)
		}
		return nil
	})
}

func quoteName(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// scanInserts calls fn with the table name (without its database) and the
// line of every INSERT and REPLACE statement of an SQL text, skipping the
// other statements, strings, quoted names and comments. Versioned comments
// ("/*!40000 ... */") are comments here, as in the SQL reader.
//
// The client command DELIMITER (mysqldump and mariadb-dump write stored
// routines and triggers between "DELIMITER ;;" and "DELIMITER ;") is
// understood: an INSERT while another delimiter is in effect is a statement
// of a routine's body, which the SQL reader, reading statements up to ";",
// would take for rows. It is an error.
func scanInserts(r io.Reader, file string, fn func(table string, line int64) error) error {
	s := &stmtScanner{r: r, buf: make([]byte, 64<<10), line: 1, file: file}
	delim, delimLine := ";", int64(0)
	for {
		if !s.skipSpace() {
			return s.err
		}
		if s.buf[s.pos] == ';' {
			s.pos++
			continue
		}
		line := s.line
		if d, ok := s.delimiter(); ok {
			delim, delimLine = d, line
			continue
		}
		s.head = s.head[:0]
		s.capture = true
		if err := s.statement(); err != nil {
			return err
		}
		if table, ok := insertTable(s.head); ok {
			if delim != ";" {
				return fmt.Errorf("%s:%d: INSERT into %s after \"DELIMITER %s\" (line %d): a statement of a stored routine's body, "+
					"which storm would take for rows; dump the routines apart (mysqldump and mariadb-dump: --skip-routines)",
					file, line, quoteName(table), delim, delimLine)
			}
			if err := fn(table, line); err != nil {
				return err
			}
		}
	}
}

// delimiter reads the client command "DELIMITER <d>" at pos, to the end of
// its line, and returns d; ok is false, and nothing is read, for anything
// else.
func (s *stmtScanner) delimiter() (string, bool) {
	const kw = "DELIMITER"
	if !s.ensure(len(kw)+1) || !strings.EqualFold(string(s.buf[s.pos:s.pos+len(kw)]), kw) {
		return "", false
	}
	if c := s.buf[s.pos+len(kw)]; c != ' ' && c != '\t' {
		return "", false
	}
	s.capture = false
	var line []byte
	for s.ensure(1) {
		b := s.buf[s.pos:s.n]
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			line = append(line, b...)
			s.pos = s.n
			continue
		}
		line = append(line, b[:i]...)
		s.pos += i
		break
	}
	fields := strings.Fields(string(line[len(kw):]))
	if len(fields) == 0 {
		return ";", true
	}
	return fields[0], true
}

// headSize is how much of a statement insertTable sees: enough for
// INSERT, its modifiers and comments, and two quoted 64-character names.
const headSize = 1024

// stmtScanner walks SQL text statement by statement.
type stmtScanner struct {
	r       io.Reader
	buf     []byte
	pos, n  int
	eof     bool
	err     error
	line    int64
	file    string
	head    []byte // the first headSize bytes of the statement
	capture bool
}

// ensure makes k bytes available at pos, unless the input ends first.
func (s *stmtScanner) ensure(k int) bool {
	for s.n-s.pos < k {
		if s.eof {
			return false
		}
		if s.pos > 0 {
			copy(s.buf, s.buf[s.pos:s.n])
			s.n -= s.pos
			s.pos = 0
		}
		m, err := s.r.Read(s.buf[s.n:])
		s.n += m
		if err != nil {
			s.eof = true
			if err != io.EOF {
				s.err = err
			}
		}
	}
	return true
}

// advance consumes k bytes, keeping them in head while it captures.
func (s *stmtScanner) advance(k int) {
	if s.capture {
		if room := headSize - len(s.head); room > 0 {
			s.head = append(s.head, s.buf[s.pos:s.pos+min(k, room)]...)
		} else {
			s.capture = false
		}
	}
	s.pos += k
}

// skipSpace skips whitespace and comments between statements; false at the
// end of the input.
func (s *stmtScanner) skipSpace() bool {
	s.capture = false
	for s.ensure(1) {
		switch c := s.buf[s.pos]; c {
		case '\n':
			s.line++
			s.pos++
		case ' ', '\t', '\r', '\f', '\v':
			s.pos++
		case '#', '-', '/':
			if !s.comment() {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// comment skips a comment at pos, if there is one.
func (s *stmtScanner) comment() bool {
	switch c := s.buf[s.pos]; {
	case c == '#':
	case c == '-' && s.ensure(2) && s.buf[s.pos+1] == '-' && (!s.ensure(3) || s.buf[s.pos+2] <= ' '):
	case c == '/' && s.ensure(2) && s.buf[s.pos+1] == '*':
		s.advance(2)
		for s.ensure(2) {
			if s.buf[s.pos] == '*' && s.buf[s.pos+1] == '/' {
				s.advance(2)
				return true
			}
			if s.buf[s.pos] == '\n' {
				s.line++
			}
			s.advance(1)
		}
		s.advance(s.n - s.pos) // unterminated: the SQL reader reports it
		return true
	default:
		return false
	}
	for s.ensure(1) {
		i := bytes.IndexByte(s.buf[s.pos:s.n], '\n')
		if i >= 0 {
			s.advance(i)
			return true
		}
		s.advance(s.n - s.pos)
	}
	return true
}

// statement skips to just past the ";" that ends the statement at pos, or
// to the end of the input.
func (s *stmtScanner) statement() error {
	for s.ensure(1) {
		switch c := s.buf[s.pos]; c {
		case ';':
			s.pos++
			return nil
		case '\n':
			s.line++
			s.advance(1)
		case '\'', '"', '`':
			s.quoted(c)
		case '#', '-', '/':
			if !s.comment() {
				s.advance(1)
			}
		default:
			b := s.buf[s.pos+1 : s.n]
			i := 0
			for i < len(b) && !stmtSpecial[b[i]] {
				i++
			}
			s.advance(1 + i)
		}
	}
	return s.err
}

// stmtSpecial holds the bytes statement looks at; it skips runs of others.
var stmtSpecial = func() (t [256]bool) {
	for _, c := range []byte(";\n'\"`#-/") {
		t[c] = true
	}
	return t
}()

// quoted skips a string or quoted name; backslash escapes apply in strings.
func (s *stmtScanner) quoted(q byte) {
	s.advance(1)
	for s.ensure(1) {
		b := s.buf[s.pos:s.n]
		i := 0
		for i < len(b) && b[i] != q && (b[i] != '\\' || q == '`') {
			i++
		}
		s.line += int64(bytes.Count(b[:i], []byte{'\n'}))
		s.advance(i)
		if i == len(b) {
			continue
		}
		if b[i] == '\\' {
			if !s.ensure(2) {
				s.advance(1)
				return
			}
			if s.buf[s.pos+1] == '\n' {
				s.line++
			}
			s.advance(2)
			continue
		}
		s.advance(1) // the closing quote; a doubled one opens the rest
		if !s.ensure(1) || s.buf[s.pos] != q {
			return
		}
		s.advance(1)
	}
}

// insertTable returns the table of an INSERT or REPLACE statement from its
// first bytes; ok is false for other statements.
func insertTable(head []byte) (table string, ok bool) {
	t := headTokens{s: string(head), cut: len(head) >= headSize}
	w, _ := t.next()
	if !strings.EqualFold(w, "INSERT") && !strings.EqualFold(w, "REPLACE") {
		return "", false
	}
	for {
		w, quoted := t.next()
		if w == "" {
			return "", false
		}
		if !quoted && isInsertModifier(w) {
			continue
		}
		table = w
		if dot, _ := t.peek(); dot == "." {
			t.next()
			if w, _ = t.next(); w != "" {
				table = w
			}
		}
		return table, true
	}
}

func isInsertModifier(w string) bool {
	for _, m := range []string{"INTO", "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE"} {
		if strings.EqualFold(w, m) {
			return true
		}
	}
	return false
}

// headTokens splits a statement's first bytes into names and keywords (a
// quoted name comes back unquoted, with quoted set) and single punctuation
// characters, skipping whitespace and comments. It returns "" at the end.
// With cut, s may stop in the middle of a token, and a token that reaches
// the end of s is not returned.
type headTokens struct {
	s   string
	i   int
	cut bool
}

func (t *headTokens) peek() (string, bool) {
	save := t.i
	w, q := t.next()
	t.i = save
	return w, q
}

// skip skips whitespace and comments.
func (t *headTokens) skip() {
	s := t.s
	for t.i < len(s) {
		c := s[t.i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			t.i++
		case c == '#' || c == '-' && strings.HasPrefix(s[t.i:], "--") && (t.i+2 == len(s) || s[t.i+2] <= ' '):
			if j := strings.IndexByte(s[t.i:], '\n'); j >= 0 {
				t.i += j
			} else {
				t.i = len(s)
			}
		case c == '/' && strings.HasPrefix(s[t.i:], "/*"):
			if j := strings.Index(s[t.i+2:], "*/"); j >= 0 {
				t.i += 2 + j + 2
			} else {
				t.i = len(s)
			}
		default:
			return
		}
	}
}

func (t *headTokens) next() (string, bool) {
	t.skip()
	s := t.s
	if t.i >= len(s) {
		return "", false
	}
	switch c := s[t.i]; {
	case c == '`' || c == '"':
		var b strings.Builder
		for j := t.i + 1; j < len(s); j++ {
			if s[j] == c {
				if j+1 < len(s) && s[j+1] == c {
					b.WriteByte(c)
					j++
					continue
				}
				t.i = j + 1
				return b.String(), true
			}
			b.WriteByte(s[j])
		}
		t.i = len(s) // unterminated
		return "", false
	case isNameByte(c):
		j := t.i
		for j < len(s) && isNameByte(s[j]) {
			j++
		}
		w := s[t.i:j]
		t.i = j
		if j == len(s) && t.cut {
			return "", false
		}
		return w, false
	default:
		t.i++
		return s[t.i-1 : t.i], false
	}
}

// isNameByte: the bytes of unquoted names and keywords, multi-byte UTF-8
// included, as in MySQL.
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
}
