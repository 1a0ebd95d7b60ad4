package source

import (
	"io"
)

// bufSize is large so that the hot loops run over long stretches of memory
// and the file is read with few system calls. Tests shrink it to make tokens
// straddle refills.
var bufSize = 256 << 10

// scanner is a minimal buffered reader that exposes its buffer, so parsers
// can run tight loops over buf[pos:n] and copy whole segments at once.
// bufio.Reader hides the buffer behind per-byte or per-delimiter calls,
// which costs too much at hundreds of MB/s.
type scanner struct {
	r    io.Reader
	buf  []byte
	pos  int   // next unread byte
	n    int   // end of the valid bytes
	base int64 // offset in the stream of buf[0]
	err  error // sticky: io.EOF or a read error
}

func (s *scanner) reset(r io.Reader, base int64) {
	if s.buf == nil {
		s.buf = make([]byte, bufSize)
	}
	s.r, s.pos, s.n, s.base, s.err = r, 0, 0, base, nil
}

func (s *scanner) offset() int64 { return s.base + int64(s.pos) }

// fill appends more input after the unread bytes, moving them to the front of
// the buffer first. It reports whether any byte was added; when not, s.err
// says why.
func (s *scanner) fill() bool {
	if s.err != nil {
		return false
	}
	if s.pos > 0 {
		copy(s.buf, s.buf[s.pos:s.n])
		s.base += int64(s.pos)
		s.n -= s.pos
		s.pos = 0
	}
	if s.n == len(s.buf) {
		// Only lookahead for a multi-byte token gets here, and tokens are
		// short; grow rather than fail for pathological configurations.
		nb := make([]byte, 2*len(s.buf))
		copy(nb, s.buf[:s.n])
		s.buf = nb
	}
	for range 100 {
		m, err := s.r.Read(s.buf[s.n:])
		s.n += m
		if err != nil {
			s.err = err
			return m > 0
		}
		if m > 0 {
			return true
		}
	}
	s.err = io.ErrNoProgress
	return false
}

// ensure makes k bytes available at pos unless the input ends first.
func (s *scanner) ensure(k int) bool {
	for s.n-s.pos < k {
		if !s.fill() {
			return false
		}
	}
	return true
}

// hasPrefix reports whether the unread input starts with tok.
func (s *scanner) hasPrefix(tok []byte) bool {
	if s.n-s.pos < len(tok) && !s.ensure(len(tok)) {
		return false
	}
	return string(s.buf[s.pos:s.pos+len(tok)]) == string(tok)
}

// failure is the read error that stopped the input, or nil at a clean end.
func (s *scanner) failure() error {
	if s.err == io.EOF {
		return nil
	}
	return s.err
}

// atEOF reports whether no unread byte is left; a read error also ends the
// input, so callers must check failure afterwards.
func (s *scanner) atEOF() bool {
	return s.pos >= s.n && !s.fill()
}

// unescape maps the byte after a backslash to the byte it stands for, as
// MySQL's LOAD DATA and string literals do.
var unescape = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	t['0'] = 0
	t['b'] = '\b'
	t['n'] = '\n'
	t['r'] = '\r'
	t['t'] = '\t'
	t['Z'] = 0x1a
	return t
}()

// fillValues points the values of a record into data, where the decoded
// fields lie back to back and ends[i] is where field i ends. The capacity of
// each Data is capped so that a caller appending to one cannot overwrite the
// next.
// plain, when not nil, says which fields hold no byte tsvSpecial names.
func fillValues(dst []Value, data []byte, ends []int, nulls, plain []bool) []Value {
	dst = dst[:0]
	from := 0
	for i, e := range ends {
		if nulls[i] {
			dst = append(dst, Value{Null: true})
		} else {
			dst = append(dst, Value{Data: data[from:e:e], Plain: plain != nil && plain[i]})
		}
		from = e
	}
	return dst
}

// tsvSpecial are the bytes Value.Plain excludes.
var tsvSpecial = [256]bool{'\\': true, '\t': true, '\n': true, '\r': true, 0: true, 0x1a: true}

// TSVEscape is the letter that follows a backslash for each byte LOAD
// DATA text (FIELDS TERMINATED BY '\t' ESCAPED BY '\\') must escape, 0
// for the rest; TSVUnescape maps the letter back.
var (
	TSVEscape   = [256]byte{'\\': '\\', '\t': 't', '\n': 'n', '\r': 'r', 0: '0', 0x1a: 'Z'}
	TSVUnescape = [256]byte{'\\': '\\', 't': '\t', 'n': '\n', 'r': '\r', '0': 0, 'Z': 0x1a}
)

// tsvSame marks the letters e whose CSV escape \e is the same two bytes in
// LOAD DATA text.
var tsvSame = func() (t [256]bool) {
	for e := range t {
		c := unescape[e]
		t[e] = tsvSpecial[c] && TSVEscape[c] == byte(e)
	}
	return t
}()

// appendTSV appends v to dst as a field of LOAD DATA text.
func appendTSV(dst, v []byte) []byte {
	start := 0
	for i, c := range v {
		if e := TSVEscape[c]; e != 0 {
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', e)
			start = i + 1
		}
	}
	return append(dst, v[start:]...)
}
