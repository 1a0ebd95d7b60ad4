package source

import (
	"bytes"
	"fmt"
	"io"
)

// sqlReader reads the rows of the INSERT and REPLACE statements of an SQL
// dump and skips every other statement.
//
// A row inside an INSERT cannot be read without the statement header that
// precedes it, so the reader always parses from the start of the file and
// drops the rows ending at or before the resume offset.
type sqlReader struct {
	s         scanner
	file      string
	line      int64
	state     sqlState
	cols      []string
	skipUntil int64
	close     func() error
	err       error

	word   []byte // scratch for keywords and identifiers
	data   []byte // decoded values of the current tuple, back to back
	ends   []int
	nulls  []bool
	values []Value
}

type sqlState int

const (
	stStatement  sqlState = iota // between statements
	stTuple                      // after VALUES or ",": a tuple must follow
	stAfterTuple                 // after a tuple: ",", ";" or the end
)

func openSQL(ch Chunk, resumeOffset int64) (Reader, error) {
	in, closeFn, err := openChunkStream(ch)
	if err != nil {
		return nil, err
	}
	r := &sqlReader{file: ch.Path, line: 1, skipUntil: resumeOffset, close: closeFn}
	r.s.reset(in, 0)
	r.data = make([]byte, 0, 4096) // non-nil: an empty string is not nil
	return r, nil
}

func (r *sqlReader) Columns() []string { return r.cols }

func (r *sqlReader) Close() error {
	if r.close == nil {
		return nil
	}
	err := r.close()
	r.close = nil
	return err
}

func (r *sqlReader) Next() (Row, error) {
	if r.err != nil {
		return Row{}, r.err
	}
	for {
		row, err := r.next()
		if err != nil {
			if err != io.EOF {
				r.err = err
			}
			return Row{}, err
		}
		if row.End > r.skipUntil {
			return row, nil
		}
	}
}

func (r *sqlReader) next() (Row, error) {
	s := &r.s
	for {
		c, err := r.skipSpace()
		if err == io.EOF && r.state == stTuple {
			return Row{}, r.errorf("the statement ends where a tuple \"(...)\" was expected")
		}
		if err != nil {
			return Row{}, err
		}
		switch r.state {
		case stStatement:
			if c == ';' {
				s.pos++
				continue
			}
			if wordByte[c] {
				w := r.readWord()
				if bytes.EqualFold(w, kwInsert) || bytes.EqualFold(w, kwReplace) {
					if err := r.insertHeader(); err != nil {
						return Row{}, err
					}
					r.state = stTuple
					continue
				}
			}
			if err := r.skipStatement(); err != nil {
				return Row{}, err
			}
		case stTuple:
			if c != '(' {
				return Row{}, r.unexpected(`a tuple "(...)"`)
			}
			return r.tuple()
		case stAfterTuple:
			switch c {
			case ',':
				s.pos++
				r.state = stTuple
			case ';':
				s.pos++
				r.state = stStatement
			default:
				return Row{}, r.unexpected(`"," or ";" after a tuple`)
			}
		}
	}
}

var (
	kwInsert  = []byte("INSERT")
	kwReplace = []byte("REPLACE")
	kwInto    = []byte("INTO")
	kwValues  = []byte("VALUES")
	kwValue   = []byte("VALUE")
	kwNull    = []byte("NULL")
	kwTrue    = []byte("TRUE")
	kwFalse   = []byte("FALSE")
	modifiers = [][]byte{[]byte("LOW_PRIORITY"), []byte("DELAYED"), []byte("HIGH_PRIORITY"), []byte("IGNORE")}
)

// insertHeader parses what follows INSERT or REPLACE, up to VALUES:
// modifiers, INTO, the table name and the column list if any.
func (r *sqlReader) insertHeader() error {
	r.cols = nil
	for named := false; !named; {
		c, err := r.skipSpace()
		if err != nil {
			return r.eofError(err, "the INSERT statement ends before its table name")
		}
		switch {
		case c == '`' || c == '"':
			if _, err := r.ident(); err != nil {
				return err
			}
			named = true
		case wordByte[c]:
			w := r.readWord()
			named = !bytes.EqualFold(w, kwInto) && !isModifier(w)
		default:
			return r.unexpected("a table name")
		}
	}
	c, err := r.skipSpace()
	if err == nil && c == '.' { // db.table
		r.s.pos++
		if _, err = r.skipSpace(); err == nil {
			if _, err = r.ident(); err == nil {
				c, err = r.skipSpace()
			}
		}
	}
	if err != nil {
		return r.eofError(err, "the INSERT statement ends before VALUES")
	}
	if c == '(' {
		r.s.pos++
		if err := r.columnList(); err != nil {
			return err
		}
		if c, err = r.skipSpace(); err != nil {
			return r.eofError(err, "the INSERT statement ends before VALUES")
		}
	}
	if !wordByte[c] {
		return r.unexpected("VALUES")
	}
	if w := r.readWord(); !bytes.EqualFold(w, kwValues) && !bytes.EqualFold(w, kwValue) {
		return r.errorf("unexpected %q, expected VALUES (only INSERT ... VALUES is supported)", w)
	}
	return nil
}

func isModifier(w []byte) bool {
	for _, m := range modifiers {
		if bytes.EqualFold(w, m) {
			return true
		}
	}
	return false
}

// columnList reads "a, `b`)" after the opening parenthesis.
func (r *sqlReader) columnList() error {
	cols := []string{}
	for {
		if _, err := r.skipSpace(); err != nil {
			return r.eofError(err, "the column list is not closed")
		}
		name, err := r.ident()
		if err != nil {
			return err
		}
		cols = append(cols, name)
		c, err := r.skipSpace()
		if err != nil {
			return r.eofError(err, "the column list is not closed")
		}
		r.s.pos++
		switch c {
		case ',':
		case ')':
			r.cols = cols
			return nil
		default:
			r.s.pos--
			return r.unexpected(`"," or ")" in the column list`)
		}
	}
}

// ident reads a bare, `backquoted` or "double-quoted" identifier.
func (r *sqlReader) ident() (string, error) {
	s := &r.s
	if s.atEOF() {
		return "", r.eofError(s.failure(), "the statement ends where a name was expected")
	}
	q := s.buf[s.pos]
	if q != '`' && q != '"' {
		if !wordByte[q] {
			return "", r.unexpected("a name")
		}
		return string(r.readWord()), nil
	}
	line, off := r.line, s.offset()
	s.pos++
	r.word = r.word[:0]
	for {
		if s.atEOF() {
			if err := s.failure(); err != nil {
				return "", err
			}
			return "", &ParseError{File: r.file, Line: line, Stopped: r.line, Offset: off, Reason: "unterminated quoted name"}
		}
		c := s.buf[s.pos]
		s.pos++
		if c == q {
			if !s.ensure(1) || s.buf[s.pos] != q {
				return string(r.word), nil
			}
			s.pos++
		}
		if c == '\n' {
			r.line++
		}
		r.word = append(r.word, c)
	}
}

// readWord reads the run of identifier bytes at pos into r.word.
func (r *sqlReader) readWord() []byte {
	s := &r.s
	r.word = r.word[:0]
	for {
		b := s.buf[s.pos:s.n]
		i := 0
		for i < len(b) && wordByte[b[i]] {
			i++
		}
		r.word = append(r.word, b[:i]...)
		s.pos += i
		if i < len(b) || !s.fill() {
			return r.word
		}
	}
}

// wordByte holds the bytes of unquoted identifiers and keywords; bytes of
// multi-byte UTF-8 characters count, as in MySQL.
var wordByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
	}
	return t
}()

// skipSpace skips whitespace and comments and returns the next byte without
// consuming it, or io.EOF. It runs between all tokens, so the common case of
// nothing to skip is kept small enough to inline.
func (r *sqlReader) skipSpace() (byte, error) {
	if s := &r.s; s.pos < s.n {
		if c := s.buf[s.pos]; !spaceStart[c] {
			return c, nil
		}
	}
	return r.skipSpaceSlow()
}

// spaceStart holds the bytes that may start whitespace or a comment.
var spaceStart = byteSet(" \t\r\n\f\v#-/")

func (r *sqlReader) skipSpaceSlow() (byte, error) {
	s := &r.s
	for {
		if s.pos >= s.n && !s.fill() {
			if err := s.failure(); err != nil {
				return 0, err
			}
			return 0, io.EOF
		}
		c := s.buf[s.pos]
		switch {
		case c == '\n':
			r.line++
			s.pos++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			s.pos++
		case c == '#' || c == '-' && r.dashComment():
			r.skipLine()
		case c == '/' && s.ensure(2) && s.buf[s.pos+1] == '*':
			if err := r.skipBlockComment(); err != nil {
				return 0, err
			}
		default:
			return c, nil
		}
	}
}

// dashComment reports whether "--" at pos starts a comment, which MySQL
// requires to be followed by whitespace (or the end).
func (r *sqlReader) dashComment() bool {
	s := &r.s
	if !s.ensure(2) || s.buf[s.pos+1] != '-' {
		return false
	}
	return !s.ensure(3) || s.buf[s.pos+2] <= ' '
}

// skipLine skips to the end of the line, leaving the newline.
func (r *sqlReader) skipLine() {
	s := &r.s
	for {
		if i := bytes.IndexByte(s.buf[s.pos:s.n], '\n'); i >= 0 {
			s.pos += i
			return
		}
		s.pos = s.n
		if !s.fill() {
			return
		}
	}
}

func (r *sqlReader) skipBlockComment() error {
	s := &r.s
	line, off := r.line, s.offset()
	s.pos += 2
	for {
		if s.atEOF() {
			if err := s.failure(); err != nil {
				return err
			}
			return &ParseError{File: r.file, Line: line, Stopped: r.line, Offset: off, Reason: "unterminated comment"}
		}
		c := s.buf[s.pos]
		s.pos++
		switch {
		case c == '\n':
			r.line++
		case c == '*' && s.ensure(1) && s.buf[s.pos] == '/':
			s.pos++
			return nil
		}
	}
}

// skipStatement skips to just past the next ";" that is outside strings,
// quoted names and comments, or to the end of the input.
func (r *sqlReader) skipStatement() error {
	s := &r.s
	for {
		c, err := r.skipSpace()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch c {
		case ';':
			s.pos++
			return nil
		case '\'', '"':
			if err := r.str(c, true); err != nil {
				return err
			}
		case '`':
			if _, err := r.ident(); err != nil {
				return err
			}
		default:
			s.pos++
		}
	}
}

func (r *sqlReader) errorf(format string, args ...any) error {
	return &ParseError{File: r.file, Line: r.line, Offset: r.s.offset(), Reason: fmt.Sprintf(format, args...)}
}

// eofError turns a clean end of input into a ParseError saying what is
// missing, and passes read errors through.
func (r *sqlReader) eofError(err error, reason string) error {
	if err == nil || err == io.EOF {
		return r.errorf("%s", reason)
	}
	return err
}

// unexpected reports the text at pos, which is not what the grammar wants.
func (r *sqlReader) unexpected(want string) error {
	s := &r.s
	s.ensure(16)
	got := s.buf[s.pos:min(s.n, s.pos+16)]
	if len(got) == 0 {
		return r.errorf("unexpected end of input, expected %s", want)
	}
	return r.errorf("unexpected %q, expected %s", got, want)
}
