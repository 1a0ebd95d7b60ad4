package source

import (
	"bytes"
	"fmt"
)

// csvParser turns the bytes of a CSV stream into records. The splitter runs
// the same code with discard set, so shard boundaries land exactly where the
// reader sees rows start.
type csvParser struct {
	s    scanner
	file string
	line int64 // line number at s.offset()
	// recLine is the line the current record began on, which errors name
	// beside the line the parser stopped on.
	recLine int64

	sep, term, delim, null []byte
	crlf                   bool // term is "\n" or "\r\n"
	escape                 bool
	sepNL, termNL, delimNL int64 // newlines inside the tokens

	stopUnq [256]bool // bytes that interrupt an unquoted field
	stopQ   [256]bool // bytes that interrupt a quoted field

	// The current record: decoded field bytes back to back, where each field
	// ends, and which are NULL.
	data  []byte
	ends  []int
	nulls []bool
	plain []bool // the field holds no byte tsvSpecial names (Value.Plain)
	dirty bool   // the current field holds one
	// tsv: data holds the record encoded as LOAD DATA text instead
	// (Row.TSV): escaped, fields joined by tabs, NULL as \N. The runs the
	// loops copy hold no byte that needs an escape (the stop tables hold
	// them all), so the encoding costs only the bytes that do.
	tsv bool
}

type recKind int

const (
	recEOF   recKind = iota // no record: the input ended
	recBlank                // an empty line, which holds no row
	recRow
)

type fieldEnd int

const (
	endSep fieldEnd = iota
	endTerm
	endEOF
)

// init compiles cfg. An empty Separator means ","; an empty Delimiter
// disables quoting; Null is taken literally, so "" makes an empty unquoted
// field NULL (as in Lightning).
func (p *csvParser) init(file string, cfg CSVConfig) {
	p.file = file
	p.data = make([]byte, 0, 4096) // non-nil: an empty field is "", not nil
	p.sep = []byte(cfg.Separator)
	if len(p.sep) == 0 {
		p.sep = []byte(",")
	}
	p.delim = []byte(cfg.Delimiter)
	p.term = []byte(cfg.Terminator)
	p.crlf = len(p.term) == 0
	if p.crlf {
		p.term = []byte("\n")
	}
	p.null = []byte(cfg.Null)
	p.escape = cfg.BackslashEscape
	p.sepNL = int64(bytes.Count(p.sep, nl))
	p.termNL = int64(bytes.Count(p.term, nl))
	p.delimNL = int64(bytes.Count(p.delim, nl))

	p.stopUnq = [256]bool{}
	p.stopQ = [256]bool{}
	for _, t := range []*[256]bool{&p.stopUnq, &p.stopQ} {
		t['\n'] = true // counted as a line even inside fields
		if p.escape {
			t['\\'] = true
		}
		// The other bytes a LOAD DATA text escapes stop the runs too, as
		// plain data, so that each field knows whether it holds one.
		for c, special := range tsvSpecial {
			if special {
				t[c] = true
			}
		}
	}
	p.stopUnq[p.sep[0]] = true
	p.stopUnq[p.term[0]] = true
	if p.crlf {
		p.stopUnq['\r'] = true
	}
	if len(p.delim) > 0 {
		p.stopQ[p.delim[0]] = true
	}
}

var nl = []byte("\n")

// termLen is the length of the terminator at pos, 0 if none is there; c is
// the byte at pos.
func (p *csvParser) termLen(c byte) int {
	if p.crlf {
		switch c {
		case '\n':
			return 1
		case '\r':
			if p.s.ensure(2) && p.s.buf[p.s.pos+1] == '\n' {
				return 2
			}
		}
		return 0
	}
	if c == p.term[0] && (len(p.term) == 1 || p.s.hasPrefix(p.term)) {
		return len(p.term)
	}
	return 0
}

// readRecord reads one record. With discard set the fields are only
// skipped, which is how the splitter scans.
func (p *csvParser) readRecord(discard bool) (recKind, error) {
	p.data, p.ends, p.nulls, p.plain = p.data[:0], p.ends[:0], p.nulls[:0], p.plain[:0]
	s := &p.s
	if s.atEOF() {
		return recEOF, s.failure()
	}
	if n := p.termLen(s.buf[s.pos]); n > 0 {
		s.pos += n
		p.line += p.termNL
		return recBlank, nil
	}
	p.recLine = p.line
	for {
		var end fieldEnd
		var err error
		if p.tsv && !discard && len(p.ends) > 0 {
			p.data = append(p.data, '\t')
		}
		if len(p.delim) > 0 && s.buf[s.pos] == p.delim[0] && (len(p.delim) == 1 || s.hasPrefix(p.delim)) {
			end, err = p.quoted(discard)
		} else {
			end, err = p.unquoted(discard)
		}
		if err != nil {
			return recRow, err
		}
		if end != endSep {
			return recRow, nil
		}
		if s.atEOF() {
			// "a,b," at the end of the input: one more, empty field.
			if err := s.failure(); err != nil {
				return recRow, err
			}
			p.dirty = false
			if p.tsv && !discard {
				p.data = append(p.data, '\t')
			}
			p.endField(discard, len(p.data), len(p.null) == 0)
			return recRow, nil
		}
	}
}

func (p *csvParser) endField(discard bool, start int, null bool) {
	if discard {
		return
	}
	if null {
		p.data = p.data[:start]
		if p.tsv {
			p.data = append(p.data, '\\', 'N')
		}
	}
	p.ends = append(p.ends, len(p.data))
	p.nulls = append(p.nulls, null)
	p.plain = append(p.plain, !p.dirty)
}

// delimEnd consumes the separator or terminator at pos, if any.
func (p *csvParser) delimEnd(c byte) (fieldEnd, bool) {
	s := &p.s
	if c == p.sep[0] && (len(p.sep) == 1 || s.hasPrefix(p.sep)) {
		s.pos += len(p.sep)
		p.line += p.sepNL
		return endSep, true
	}
	if n := p.termLen(c); n > 0 {
		s.pos += n
		p.line += p.termNL
		return endTerm, true
	}
	return 0, false
}

// unquoted reads a field up to a separator, terminator or the end. NULL is
// recognised on the raw bytes (before unescaping), so nk counts how many
// bytes of p.null the raw field has matched, or is -1 after a mismatch.
func (p *csvParser) unquoted(discard bool) (fieldEnd, error) {
	s := &p.s
	stop := &p.stopUnq
	start := len(p.data)
	nk := 0
	p.dirty = false
	for {
		b := s.buf[s.pos:s.n]
		i := 0
		for i < len(b) && !stop[b[i]] {
			i++
		}
		if i > 0 {
			if !discard {
				p.data = append(p.data, b[:i]...)
				nk = p.matchNull(nk, b[:i])
			}
			s.pos += i
		}
		if i == len(b) {
			if !s.fill() {
				if err := s.failure(); err != nil {
					return 0, err
				}
				p.endField(discard, start, nk == len(p.null))
				return endEOF, nil
			}
			continue
		}
		c := b[i]
		if end, ok := p.delimEnd(c); ok {
			p.endField(discard, start, nk == len(p.null))
			return end, nil
		}
		if c == '\\' && p.escape && s.ensure(2) {
			e := s.buf[s.pos+1]
			if !discard {
				p.put(unescape[e])
				nk = p.matchNull(nk, s.buf[s.pos:s.pos+2])
			}
			s.pos += 2
			if e == '\n' {
				p.line++
			}
			continue
		}
		// A newline that is not a terminator, a lone '\r', a partial
		// separator or a backslash at the very end: plain data.
		if !discard {
			p.put(c)
			nk = p.matchNull(nk, s.buf[s.pos:s.pos+1])
		}
		s.pos++
		if c == '\n' {
			p.line++
		}
	}
}

// put appends one byte of a field's value: escaped in tsv mode, noted in
// dirty otherwise.
func (p *csvParser) put(c byte) {
	if !tsvSpecial[c] {
		p.data = append(p.data, c)
		return
	}
	if p.tsv {
		p.data = append(p.data, '\\', TSVEscape[c])
		return
	}
	p.data = append(p.data, c)
	p.dirty = true
}

func (p *csvParser) matchNull(nk int, seg []byte) int {
	if nk < 0 || nk+len(seg) > len(p.null) || !bytes.Equal(seg, p.null[nk:nk+len(seg)]) {
		return -1
	}
	return nk + len(seg)
}

// quoted reads a field that starts with the delimiter at pos. After the
// closing delimiter only a separator, a terminator or the end may follow.
func (p *csvParser) quoted(discard bool) (fieldEnd, error) {
	s := &p.s
	stop := &p.stopQ
	start := len(p.data)
	p.dirty = false
	openLine, openOff := p.line, s.offset()
	s.pos += len(p.delim)
	p.line += p.delimNL
	// LOAD DATA text writes most escapes as the CSV does (\\, \n, \t, \r,
	// \0, \Z): those stay in the run that is copied.
	same := p.tsv && !discard && p.escape && p.delim[0] != '\\'
	for {
		b := s.buf[s.pos:s.n]
		i := 0
		for {
			for i < len(b) && !stop[b[i]] {
				i++
			}
			if !same || i+1 >= len(b) || b[i] != '\\' || !tsvSame[b[i+1]] {
				break
			}
			i += 2
		}
		if i > 0 {
			if !discard {
				p.data = append(p.data, b[:i]...)
			}
			s.pos += i
		}
		if i == len(b) {
			if !s.fill() {
				if err := s.failure(); err != nil {
					return 0, err
				}
				return 0, p.errorAt(openLine, openOff, "unclosed quoted field")
			}
			continue
		}
		c := b[i]
		if c == p.delim[0] && (len(p.delim) == 1 || s.hasPrefix(p.delim)) {
			end, doubled, err := p.closeQuote()
			if err != nil {
				return 0, err
			}
			if doubled {
				if !discard {
					for _, c := range p.delim {
						p.put(c)
					}
				}
				continue
			}
			p.endField(discard, start, false)
			return end, nil
		}
		if c == '\\' && p.escape {
			if !s.ensure(2) {
				if err := s.failure(); err != nil {
					return 0, err
				}
				return 0, p.errorAt(openLine, openOff, "unclosed quoted field")
			}
			e := s.buf[s.pos+1]
			if !discard {
				p.put(unescape[e])
			}
			s.pos += 2
			if e == '\n' {
				p.line++
			}
			continue
		}
		if !discard {
			p.put(c)
		}
		s.pos++
		if c == '\n' {
			p.line++
		}
	}
}

// closeQuote consumes the delimiter at pos inside a quoted field and what
// follows it: a second delimiter (doubled, a literal one), or the
// separator or terminator that ends the field (or the input's end).
func (p *csvParser) closeQuote() (end fieldEnd, doubled bool, err error) {
	s := &p.s
	s.pos += len(p.delim)
	p.line += p.delimNL
	if s.hasPrefix(p.delim) {
		s.pos += len(p.delim)
		p.line += p.delimNL
		return 0, true, nil
	}
	if s.atEOF() {
		return endEOF, false, s.failure()
	}
	if end, ok := p.delimEnd(s.buf[s.pos]); ok {
		return end, false, nil
	}
	return 0, false, p.errorAt(p.line, s.offset(), "unexpected content after the closing quote of a field")
}

// errorAt reports a problem found at line and off in the current record:
// the error names the line the record began on, where the problem is if
// that is another line, and the line the parser stopped on.
func (p *csvParser) errorAt(line, off int64, reason string) error {
	start := p.recLine
	if start < 1 || start > line {
		start = line
	}
	if line > start {
		reason += fmt.Sprintf(" at line %d", line)
	}
	return &ParseError{File: p.file, Line: start, Stopped: p.line, Offset: off, Reason: reason}
}
