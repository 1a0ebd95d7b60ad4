package source

import (
	"bytes"
	"io"
)

// tuple reads "(v1, v2, ...)" at pos as one row.
func (r *sqlReader) tuple() (Row, error) {
	s := &r.s
	line, off := r.line, s.offset()
	notClosed := func(err error) error {
		if err != io.EOF {
			return err
		}
		return &ParseError{File: r.file, Line: line, Stopped: r.line, Offset: off, Reason: "tuple not closed: the input ends inside it"}
	}
	s.pos++
	r.data, r.ends, r.nulls = r.data[:0], r.ends[:0], r.nulls[:0]
	c, err := r.skipSpace()
	if err != nil {
		return Row{}, notClosed(err)
	}
	if c == ')' { // VALUES (): every column takes its default
		s.pos++
	} else {
		for {
			if err := r.value(c, false); err != nil {
				return Row{}, notClosed(err)
			}
			if c, err = r.skipSpace(); err != nil {
				return Row{}, notClosed(err)
			}
			s.pos++
			if c == ')' {
				break
			}
			if c != ',' {
				s.pos--
				return Row{}, r.unexpected(`"," or ")" in a tuple`)
			}
			if c, err = r.skipSpace(); err != nil {
				return Row{}, notClosed(err)
			}
		}
	}
	r.state = stAfterTuple
	r.values = fillValues(r.values, r.data, r.ends, r.nulls, nil)
	return Row{Values: r.values, Line: line, End: s.offset(), NextLine: r.line}, nil
}

// value reads one literal starting with c at pos and appends it to the
// tuple. After a charset introducer only a string, hex or bit literal may
// follow (literalOnly).
func (r *sqlReader) value(c byte, literalOnly bool) error {
	s := &r.s
	start := len(r.data)
	null := false
	var err error
	switch {
	case c == '\'' || c == '"':
		err = r.str(c, false)
	case c == '0' && s.ensure(2) && (s.buf[s.pos+1]|0x20 == 'x' || s.buf[s.pos+1]|0x20 == 'b'):
		kind := s.buf[s.pos+1] | 0x20
		s.pos += 2
		err = r.radix(kind, 0)
	case c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.':
		if literalOnly {
			return r.unexpected("a string after a character set introducer")
		}
		err = r.number()
	case (c|0x20 == 'x' || c|0x20 == 'b' || c|0x20 == 'n') && s.ensure(2) && s.buf[s.pos+1] == '\'':
		s.pos++
		if c|0x20 == 'n' { // N'...': a national string is a plain string here
			err = r.str('\'', false)
		} else {
			s.pos++
			err = r.radix(c|0x20, '\'')
		}
	case c == '_': // _utf8mb4'x', _binary 0x00: the introducer does not change the bytes
		r.readWord()
		if c, err = r.skipSpace(); err != nil {
			return err
		}
		return r.value(c, true)
	case wordByte[c] && !literalOnly:
		line, off := r.line, s.offset()
		w := r.readWord()
		switch {
		case bytes.EqualFold(w, kwNull):
			null = true
		case bytes.EqualFold(w, kwTrue):
			r.data = append(r.data, '1')
		case bytes.EqualFold(w, kwFalse):
			r.data = append(r.data, '0')
		default:
			return &ParseError{File: r.file, Line: line, Stopped: r.line, Offset: off, Reason: "unexpected " + quote(w) + ", expected a value (only literals are supported)"}
		}
	default:
		return r.unexpected("a value")
	}
	if err != nil {
		return err
	}
	r.ends = append(r.ends, len(r.data))
	r.nulls = append(r.nulls, null)
	if null {
		r.data = r.data[:start]
	}
	return nil
}

func quote(w []byte) string { return "\"" + string(w) + "\"" }

var (
	stopSQ   = stopSet('\'', '\\', '\n')
	stopDQ   = stopSet('"', '\\', '\n')
	numByte  = byteSet("0123456789.eE+-")
	hexByte  = byteSet("0123456789abcdefABCDEF")
	bitByte  = byteSet("01")
	hexValue = func() (t [256]byte) {
		for i, c := range []byte("0123456789abcdef") {
			t[c] = byte(i)
			t[c&^0x20] = byte(i) // upper case; digits are unaffected
		}
		for c := byte('0'); c <= '9'; c++ {
			t[c] = c - '0'
		}
		return t
	}()
)

func stopSet(cs ...byte) (t [256]bool) {
	for _, c := range cs {
		t[c] = true
	}
	return t
}

func byteSet(cs string) [256]bool { return stopSet([]byte(cs)...) }

// str reads a string quoted with q at pos: doubled quotes and backslash
// escapes as in MySQL, where "\%" and "\_" keep their backslash.
func (r *sqlReader) str(q byte, discard bool) error {
	s := &r.s
	stop := &stopSQ
	if q == '"' {
		stop = &stopDQ
	}
	line, off := r.line, s.offset()
	s.pos++
	for {
		b := s.buf[s.pos:s.n]
		i := 0
		for i < len(b) && !stop[b[i]] {
			i++
		}
		if !discard {
			r.data = append(r.data, b[:i]...)
		}
		s.pos += i
		if i == len(b) {
			if !s.fill() {
				if err := s.failure(); err != nil {
					return err
				}
				return &ParseError{File: r.file, Line: line, Stopped: r.line, Offset: off, Reason: "unterminated string"}
			}
			continue
		}
		c := b[i]
		switch c {
		case '\n':
			r.line++
			s.pos++
		case '\\':
			if !s.ensure(2) {
				if err := s.failure(); err != nil {
					return err
				}
				return &ParseError{File: r.file, Line: line, Stopped: r.line, Offset: off, Reason: "unterminated string"}
			}
			e := s.buf[s.pos+1]
			s.pos += 2
			if e == '\n' {
				r.line++
			}
			if !discard {
				if e == '%' || e == '_' {
					r.data = append(r.data, '\\', e)
				} else {
					r.data = append(r.data, unescape[e])
				}
			}
			continue
		default: // q
			s.pos++
			if !s.ensure(1) || s.buf[s.pos] != q {
				return nil
			}
			s.pos++
		}
		if !discard {
			r.data = append(r.data, c)
		}
	}
}

// scan appends the run of bytes in set at pos to r.data.
func (r *sqlReader) scan(set *[256]bool) {
	s := &r.s
	for {
		b := s.buf[s.pos:s.n]
		i := 0
		for i < len(b) && set[b[i]] {
			i++
		}
		r.data = append(r.data, b[:i]...)
		s.pos += i
		if i < len(b) || !s.fill() {
			return
		}
	}
}

// number keeps the text of a numeric literal after checking its shape,
// [+-]digits[.digits][e[+-]digits], so that garbage is not sent as a value.
func (r *sqlReader) number() error {
	line, off := r.line, r.s.offset()
	start := len(r.data)
	r.scan(&numByte)
	t := r.data[start:]
	i := 0
	if i < len(t) && (t[i] == '-' || t[i] == '+') {
		i++
	}
	digits := 0
	for ; i < len(t) && t[i] >= '0' && t[i] <= '9'; i++ {
		digits++
	}
	if i < len(t) && t[i] == '.' {
		for i++; i < len(t) && t[i] >= '0' && t[i] <= '9'; i++ {
			digits++
		}
	}
	if digits > 0 && i < len(t) && t[i]|0x20 == 'e' {
		i++
		if i < len(t) && (t[i] == '-' || t[i] == '+') {
			i++
		}
		exp := 0
		for ; i < len(t) && t[i] >= '0' && t[i] <= '9'; i++ {
			exp++
		}
		if exp == 0 {
			digits = 0
		}
	}
	if digits == 0 || i != len(t) {
		return &ParseError{File: r.file, Line: line, Stopped: r.line, Offset: off, Reason: "malformed number " + quote(t)}
	}
	return nil
}

// radix reads the digits of a hex ('x') or bit ('b') literal and decodes
// them in place; closing is the quote that ends X'..' or b'..', 0 for the
// 0x.. and 0b.. forms.
func (r *sqlReader) radix(kind, closing byte) error {
	s := &r.s
	line, off := r.line, s.offset()
	start := len(r.data)
	set := &hexByte
	if kind == 'b' {
		set = &bitByte
	}
	r.scan(set)
	digits := r.data[start:]
	bad := closing == 0 && len(digits) == 0
	if closing != 0 {
		bad = !s.ensure(1) || s.buf[s.pos] != closing
		if !bad {
			s.pos++
		}
	}
	if bad {
		name := "hex"
		if kind == 'b' {
			name = "bit"
		}
		if err := s.failure(); err != nil {
			return err
		}
		return &ParseError{File: r.file, Line: line, Stopped: r.line, Offset: off, Reason: "malformed " + name + " literal"}
	}
	if kind == 'x' {
		r.data = r.data[:start+decodeHex(digits)]
	} else {
		r.data = r.data[:start+decodeBits(digits)]
	}
	return nil
}

// decodeHex turns hex digits into bytes in place and returns how many. An odd
// count gets a leading zero nibble, as MySQL does for 0xABC.
func decodeHex(d []byte) int {
	n := (len(d) + 1) / 2
	i, o := 0, 0
	if len(d)%2 == 1 {
		d[0] = hexValue[d[0]]
		i, o = 1, 1
	}
	for ; i < len(d); i, o = i+2, o+1 {
		d[o] = hexValue[d[i]]<<4 | hexValue[d[i+1]]
	}
	return n
}

// decodeBits turns binary digits into big-endian bytes in place, as few as
// hold them: b'1' is one byte, b'000000001' two.
func decodeBits(d []byte) int {
	n := (len(d) + 7) / 8
	i := 0
	for o := range n {
		take := 8
		if o == 0 && len(d)%8 != 0 {
			take = len(d) % 8
		}
		var v byte
		for range take {
			v = v<<1 | d[i]&1
			i++
		}
		d[o] = v
	}
	return n
}
