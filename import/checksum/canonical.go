package checksum

// Canonical row hashing: the source side (values read from dump files) and
// the target side (the same rows, hashed by the server itself, or read back
// over the text protocol and hashed here) must hash equal when they hold the
// same logical values, so every value goes through one normalisation that
// depends on its column type. Where the server hashes, the canonical form
// must be the server's own text of the value (sql.go says for which types
// that was shown).
//
// The rules, and what was checked against MariaDB 10.11 (mariadb_test.go):
//
//   - Integers (tinyint..bigint, signed or not): optional spaces, sign,
//     leading zeros; a fraction or exponent ("1.5", "25e-1") is rounded half
//     away from zero, as the server does. Canonical form: decimal text, no
//     "+", no leading zeros, no "-0".
//   - YEAR: the integer rule, then the server's two-digit rule (1-69 ->
//     2001-2069, 70-99 -> 1970-1999), rendered as four digits. Zero is the
//     zero year 0000 however spelled, because the server sends it as "0"
//     over the text protocol (dumpers write it so); the server itself turns
//     a *string* '0' or '00' into 2000, so such a value sent as a string is
//     reported as a difference.
//   - DECIMAL(p,s): exact decimal arithmetic (no float64): sign, digits,
//     fraction, exponent; rounded half away from zero to s digits, rendered
//     with exactly s fraction digits, never "-0.00".
//   - FLOAT: the text is read as a float64 and narrowed to float32 (as the
//     server stores it), rendered to 6 significant digits, which is what
//     MariaDB prints. FLOAT equality is therefore equality to 6 significant
//     digits. DOUBLE: float64, shortest round-trip form (MariaDB prints 17
//     digits when needed). FLOAT(M,D) and DOUBLE(M,D) round the way the
//     server does (floor plus rint of the fraction) and render D digits.
//   - DATE, DATETIME, TIMESTAMP, TIME: parsed leniently (any punctuation
//     between date parts, 'T' or spaces before the time, digits-only forms,
//     two-digit years, single-digit parts, "D HH:MM:SS" for TIME) and
//     rendered "YYYY-MM-DD", "YYYY-MM-DD HH:MM:SS[.f]" and "[-]HH:MM:SS[.f]"
//     with exactly Column.Scale fraction digits. Extra fraction digits are
//     truncated when Column.TruncFraction is set (MariaDB's default) and
//     otherwise rounded half up with the carry going into seconds, minutes,
//     hours and days (MySQL's and TiDB's default). Zero dates stay zero.
//     TIMESTAMP values are compared as text: both sides must use the same
//     time_zone.
//   - CHAR: trailing spaces stripped (the server strips them on read).
//     VARCHAR, TEXT, VARBINARY, BLOB and unknown types: bytes as they are.
//   - BINARY(n): right-padded with 0x00 to n bytes, as the server pads.
//   - BIT(n): the bytes as a big-endian unsigned integer (leading zero bytes
//     do not count), rendered as decimal text. storm sends every value as a
//     string, and for a string the server stores its bytes in a BIT column:
//     a hex or bit literal decoded by the SQL reader gives the intended
//     value, but a decimal "5" in a CSV file is stored as 0x35 (53), and
//     this hash follows what is stored. Reading "5" as five instead would
//     make the readback of a stored 0x35 ambiguous, and shorter-than-n
//     literals like b'101' unreadable.
//   - ENUM: the value as is when it is a member; otherwise the member it
//     names the way the server resolves it (trailing spaces ignored, then a
//     case-insensitive match, then a number as the 1-based index).
//   - SET: members resolved like ENUM values, duplicates dropped, re-joined
//     with "," in the order of the column definition; a number that names no
//     member is a bit mask, as on the server.
//   - JSON (the MySQL/TiDB type; MariaDB's JSON is LONGTEXT and compared as
//     bytes, which is what MariaDB stores): parsed and re-encoded with sorted
//     object keys and no spaces. Numbers keep their text: 1, 1.0 and 1e0
//     differ, so a server that rewrites number spellings (MySQL prints 1e3
//     as 1000.0) mismatches on them.
//
// A row is hashed as text that the server can build too (sql.go), so that
// the target side of a digest is either computed by the server in one
// aggregate query or, where the server's text of a column can't be shown to
// equal the canonical form, read back and normalised here. The row string
// joins one term per column with ",":
//
//   - "N" for NULL;
//   - for numbers, YEAR, BIT and temporal types, the canonical text itself:
//     it never holds a "," and is never "N", so no framing is needed (and
//     the server's CONCAT_WS does not pay for one);
//   - for every other type, the byte length in decimal, ":", and the
//     canonical bytes, so that any byte may appear in a value.
//
// The row hash is taken from the SHA-1 of the row string (RowHash says
// how much of it): SHA-1, not MD5 (MariaDB's MD5 costs twice its SHA-1) nor
// a CRC of the row string itself (affine: the XOR of CRCs does not change
// when two rows of equal lengths swap a value). So NULL, "" and "NULL"
// differ, field boundaries are unambiguous, and for the types kept as they
// are the row hash equals HashRaw's.

import (
	"bytes"
	"crypto/sha1"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"storm/import/source"
)

// Column is what the hasher needs to know of a target column, read from
// information_schema.COLUMNS.
type Column struct {
	Name       string
	DataType   string // DATA_TYPE, lower case: int, bigint, decimal, varchar, datetime, ...
	ColumnType string // COLUMN_TYPE: "int(10) unsigned", "decimal(14,4)", "enum('a','b')", "set(...)", "char(8)", "bit(5)", "tinyint(1)"
	Scale      int    // NUMERIC_SCALE for decimal; DATETIME_PRECISION for datetime/timestamp/time (fractional digits)
	// TruncFraction says the server truncates fractional seconds beyond
	// Scale (MariaDB unless sql_mode has TIME_ROUND_FRACTIONAL; MySQL with
	// TIME_TRUNCATE_FRACTIONAL) instead of rounding them. ColumnsQuery
	// fills it in from the session reading the columns.
	TruncFraction bool
	// Nullable is IS_NULLABLE; Charset is CHARACTER_SET_NAME in lower case,
	// "" for types that have none. Only the server's side of the hash
	// (RowHashSQL) uses them: the row string is the same either way.
	Nullable bool
	Charset  string
}

// Field is one value: Null, or the bytes.
type Field struct {
	Null bool
	Data []byte
}

// ColumnsQuery reads the columns of a table (two ? placeholders: schema,
// table) in ordinal order; ScanColumns reads its rows. The fifth column
// says whether the server truncates fractional seconds, from VERSION() and
// the session's sql_mode: run it on a session configured like the import's.
const ColumnsQuery = "SELECT COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE, " +
	"CASE WHEN DATA_TYPE IN ('datetime', 'timestamp', 'time') THEN COALESCE(DATETIME_PRECISION, 0) " +
	"ELSE COALESCE(NUMERIC_SCALE, 0) END, " +
	"(VERSION() LIKE '%MariaDB%' AND @@SESSION.sql_mode NOT LIKE '%TIME_ROUND_FRACTIONAL%') " +
	"OR @@SESSION.sql_mode LIKE '%TIME_TRUNCATE_FRACTIONAL%', " +
	"IS_NULLABLE = 'YES', LOWER(COALESCE(CHARACTER_SET_NAME, '')) " +
	"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"

// ScanColumns reads the rows of ColumnsQuery and closes them. A table with
// no columns (it does not exist) is an error.
func ScanColumns(rows *sql.Rows) ([]Column, error) {
	defer rows.Close()
	var cols []Column
	for rows.Next() {
		var c Column
		if err := rows.Scan(&c.Name, &c.DataType, &c.ColumnType, &c.Scale, &c.TruncFraction, &c.Nullable, &c.Charset); err != nil {
			return nil, fmt.Errorf("checksum: read column: %w", err)
		}
		c.DataType = strings.ToLower(c.DataType)
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("checksum: read columns: %w", err)
	}
	if len(cols) == 0 {
		return nil, errors.New("checksum: the table has no columns (does it exist?)")
	}
	return cols, nil
}

// RowHasher hashes rows of fixed columns canonically. Not safe for
// concurrent use (reuses buffers); make one per goroutine.
type RowHasher struct {
	rh    RowHash
	specs []spec
	sha   hash.Hash // for rows with a long value, streamed
	sum   []byte
	buf   []byte
}

// NewRowHasher prepares a hasher of row hash rh for rows of cols. A column
// definition it can't read (a malformed ENUM list, say) makes every non-NULL
// value of that column an error in Hash.
func NewRowHasher(rh RowHash, cols []Column) *RowHasher {
	h := &RowHasher{rh: rh, specs: make([]spec, len(cols)), sha: sha1.New(), sum: make([]byte, 0, sha1.Size)}
	for i, c := range cols {
		h.specs[i] = prepare(c)
	}
	return h
}

// Hash returns the row hash (RowHash) of a row; vals[i] belongs to
// cols[i]. It is the row hash of the row string joining the Canonical
// terms of the values with ",".
//
// The row string is gathered in one buffer and hashed at once; only a long
// value kept as it is (a TEXT or BLOB) is streamed into the digest without
// being copied.
func (h *RowHasher) Hash(vals []Field) (uint64, error) {
	if len(vals) != len(h.specs) {
		return 0, fmt.Errorf("checksum: row has %d values for %d columns", len(vals), len(h.specs))
	}
	buf := h.buf[:0]
	streaming := false
	for i, f := range vals {
		s := &h.specs[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		switch {
		case f.Null:
			buf = append(buf, 'N')
		case s.kind == kRaw && len(f.Data) > streamAbove:
			buf = strconv.AppendInt(buf, int64(len(f.Data)), 10)
			buf = append(buf, ':')
			if !streaming {
				h.sha.Reset()
				streaming = true
			}
			_, _ = h.sha.Write(buf)
			_, _ = h.sha.Write(f.Data)
			buf = buf[:0]
		case s.kind == kRaw:
			buf = strconv.AppendInt(buf, int64(len(f.Data)), 10)
			buf = append(buf, ':')
			buf = append(buf, f.Data...)
		default:
			var err error
			if buf, err = s.appendTerm(buf, f.Data); err != nil {
				h.buf = buf[:0]
				return 0, s.fail(f.Data, err)
			}
		}
	}
	h.buf = buf[:0]
	if !streaming {
		sum := sha1.Sum(buf)
		return h.rh.fromSHA1(&sum), nil
	}
	_, _ = h.sha.Write(buf)
	h.sum = h.sha.Sum(h.sum[:0])
	return h.rh.fromSHA1((*[sha1.Size]byte)(h.sum)), nil
}

// HashRaw hashes a row's fields as read from the source, unnormalised, each
// framed as a string column's: for a row whose values can't be normalised.
// NULL is distinct from every string, and field boundaries are unambiguous.
func (h *RowHasher) HashRaw(vals []source.Value) uint64 {
	buf := h.buf[:0]
	for i, v := range vals {
		if i > 0 {
			buf = append(buf, ',')
		}
		if v.Null {
			buf = append(buf, 'N')
			continue
		}
		buf = strconv.AppendInt(buf, int64(len(v.Data)), 10)
		buf = append(buf, ':')
		buf = append(buf, v.Data...)
	}
	h.buf = buf[:0]
	sum := sha1.Sum(buf)
	return h.rh.fromSHA1(&sum)
}

// streamAbove is the length from which a value kept as it is goes into
// the digest directly rather than through the row's buffer.
const streamAbove = 256

// Canonical appends the term of one value of column c to dst, as it
// appears in the row string: "N", the canonical text, or its length, ":"
// and the canonical bytes. The error names the column and says why the
// value can't be normalised.
func Canonical(dst []byte, c Column, f Field) ([]byte, error) {
	s := prepare(c)
	return s.appendField(dst, f)
}

type kind uint8

const (
	kRaw kind = iota
	kInt
	kYear
	kDecimal
	kFloat
	kDouble
	kFixedFloat
	kFixedDouble
	kDate
	kDateTime
	kTime
	kChar
	kBinary
	kBit
	kEnum
	kSet
	kJSON
)

// spec is a Column prepared for normalising its values.
type spec struct {
	col     Column
	kind    kind
	scale   int      // decimal, temporal and FLOAT(M,D) fraction digits
	n       int      // BINARY length, BIT width
	members []string // ENUM and SET
	err     error    // the column definition could not be read
}

func prepare(c Column) spec {
	s := spec{col: c, scale: c.Scale}
	ct := strings.ToLower(strings.TrimSpace(c.ColumnType))
	switch strings.ToLower(strings.TrimSpace(c.DataType)) {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "bool", "boolean":
		s.kind = kInt
	case "year":
		s.kind = kYear
	case "decimal", "numeric", "dec", "fixed":
		s.kind = kDecimal
		if s.scale < 0 || s.scale > 65 {
			s.err = fmt.Errorf("scale %d out of range", s.scale)
		}
	case "float", "double", "real", "double precision":
		s.kind = kDouble
		if strings.HasPrefix(ct, "float") {
			s.kind = kFloat
		}
		if _, d, ok := typeArgs(ct); ok && d >= 0 {
			s.kind += kFixedFloat - kFloat
			s.scale = d
			if d > 30 {
				s.err = fmt.Errorf("%d decimals out of range", d)
			}
		}
	case "date":
		s.kind = kDate
	case "datetime", "timestamp":
		s.kind = kDateTime
	case "time":
		s.kind = kTime
	case "char":
		s.kind = kChar
	case "binary":
		s.kind = kBinary
		s.n = 1
		if n, _, ok := typeArgs(ct); ok {
			s.n = n
		}
	case "bit":
		s.kind = kBit
		s.n = 1
		if n, _, ok := typeArgs(ct); ok {
			s.n = n
		}
		if s.n < 1 || s.n > 64 {
			s.err = fmt.Errorf("bit width %d out of range", s.n)
		}
	case "enum", "set":
		s.kind = kEnum
		if strings.HasPrefix(ct, "set") {
			s.kind = kSet
		}
		s.members, s.err = parseMembers(c.ColumnType)
		if s.err == nil && s.kind == kSet && len(s.members) > 64 {
			s.err = fmt.Errorf("%d set members, at most 64", len(s.members))
		}
	case "json":
		s.kind = kJSON
	default:
		s.kind = kRaw
	}
	if (s.kind == kDateTime || s.kind == kTime) && (s.scale < 0 || s.scale > 6) {
		s.err = fmt.Errorf("fractional second precision %d out of range", s.scale)
	}
	return s
}

// typeArgs reads "name(a)" or "name(a,b)"; b is -1 when absent.
func typeArgs(ct string) (a, b int, ok bool) {
	i := strings.IndexByte(ct, '(')
	j := strings.IndexByte(ct, ')')
	if i < 0 || j < i {
		return 0, -1, false
	}
	args := strings.Split(ct[i+1:j], ",")
	if len(args) > 2 {
		return 0, -1, false
	}
	a, err := strconv.Atoi(strings.TrimSpace(args[0]))
	if err != nil {
		return 0, -1, false
	}
	b = -1
	if len(args) == 2 {
		if b, err = strconv.Atoi(strings.TrimSpace(args[1])); err != nil {
			return 0, -1, false
		}
	}
	return a, b, true
}

// parseMembers reads the quoted member list of an ENUM or SET COLUMN_TYPE.
// The server doubles a quote inside a member and escapes backslash, NUL,
// newline, CR and ^Z with a backslash.
func parseMembers(ct string) ([]string, error) {
	i := strings.IndexByte(ct, '(')
	if i < 0 {
		return nil, fmt.Errorf("no member list in %q", ct)
	}
	var out []string
	p := i + 1
	for {
		if p >= len(ct) || ct[p] != '\'' {
			return nil, fmt.Errorf("malformed member list in %q", ct)
		}
		p++
		var b strings.Builder
		for {
			if p >= len(ct) {
				return nil, fmt.Errorf("unterminated member in %q", ct)
			}
			c := ct[p]
			p++
			if c == '\'' {
				if p < len(ct) && ct[p] == '\'' {
					b.WriteByte('\'')
					p++
					continue
				}
				break
			}
			if c == '\\' && p < len(ct) {
				c = ct[p]
				p++
				switch c {
				case '0':
					c = 0
				case 'n':
					c = '\n'
				case 'r':
					c = '\r'
				case 'Z':
					c = 0x1a
				}
			}
			b.WriteByte(c)
		}
		out = append(out, b.String())
		if p < len(ct) && ct[p] == ',' {
			p++
			continue
		}
		if p < len(ct) && ct[p] == ')' {
			return out, nil
		}
		return nil, fmt.Errorf("malformed member list in %q", ct)
	}
}

// appendField appends the term of f.
func (s *spec) appendField(dst []byte, f Field) ([]byte, error) {
	if f.Null {
		return append(dst, 'N'), nil
	}
	start := len(dst)
	dst, err := s.appendTerm(dst, f.Data)
	if err != nil {
		return dst[:start], s.fail(f.Data, err)
	}
	return dst, nil
}

// plain reports whether the canonical text of the column's values goes
// into the row string as it is: numbers, YEAR, BIT (as a decimal) and
// temporal values, whose text never holds a "," and is never "N".
func (s *spec) plain() bool {
	switch s.kind {
	case kInt, kYear, kDecimal, kFloat, kDouble, kFixedFloat, kFixedDouble, kDate, kDateTime, kTime, kBit:
		return true
	}
	return false
}

// appendTerm appends the term of a non-NULL value: its canonical text, or
// for a column that is not plain its length, ":" and its canonical bytes.
func (s *spec) appendTerm(dst, b []byte) ([]byte, error) {
	start := len(dst)
	dst, err := s.appendValue(dst, b)
	if err != nil || s.plain() {
		return dst, err
	}
	// Put the length in front: the value is appended first because most
	// normalisations don't know their length in advance; it is short.
	n := len(dst) - start
	var d [24]byte
	p := strconv.AppendInt(d[:0], int64(n), 10)
	k := len(p) + 1
	dst = append(dst, d[:k]...)
	copy(dst[start+k:], dst[start:start+n])
	copy(dst[start:], p)
	dst[start+len(p)] = ':'
	return dst, nil
}

// ValueError says which value of which column could not be normalised.
type ValueError struct {
	Column     string
	ColumnType string
	Value      []byte
	Err        error
}

func (e *ValueError) Error() string {
	v := e.Value
	more := ""
	if len(v) > 64 {
		v, more = v[:64], "..."
	}
	return fmt.Sprintf("checksum: column %s %s: value %q%s: %v", e.Column, e.ColumnType, v, more, e.Err)
}

func (e *ValueError) Unwrap() error { return e.Err }

func (s *spec) fail(data []byte, err error) error {
	return &ValueError{Column: s.col.Name, ColumnType: s.col.ColumnType, Value: bytes.Clone(data), Err: err}
}

// appendValue appends the normalised bytes of a non-NULL value.
func (s *spec) appendValue(dst, b []byte) ([]byte, error) {
	if s.err != nil {
		return dst, fmt.Errorf("column definition: %w", s.err)
	}
	switch s.kind {
	case kInt:
		return appendDecimal(dst, b, 0, "an integer")
	case kYear:
		return appendYear(dst, b)
	case kDecimal:
		return appendDecimal(dst, b, s.scale, "a decimal number")
	case kFloat, kDouble, kFixedFloat, kFixedDouble:
		return s.appendFloat(dst, b)
	case kDate, kDateTime:
		return s.appendDateTime(dst, b)
	case kTime:
		return s.appendTime(dst, b)
	case kChar:
		return append(dst, bytes.TrimRight(b, " ")...), nil
	case kBinary:
		dst = append(dst, b...)
		for i := len(b); i < s.n; i++ {
			dst = append(dst, 0)
		}
		return dst, nil
	case kBit:
		return s.appendBit(dst, b)
	case kEnum:
		if i := s.member(b); i >= 0 {
			return append(dst, s.members[i]...), nil
		}
		if k, err := strconv.ParseUint(string(trimSpace(b)), 10, 16); err == nil && k >= 1 && int(k) <= len(s.members) {
			return append(dst, s.members[k-1]...), nil
		}
		return append(dst, b...), nil
	case kSet:
		return s.appendSet(dst, b)
	case kJSON:
		return appendJSON(dst, b)
	}
	return append(dst, b...), nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// maxDigits bounds the digits of a normalised decimal: more than any
// DECIMAL (65) or BIGINT holds, so a longer result is out of range anyway.
const maxDigits = 128

// appendDecimal parses b as a decimal number ([sign] digits [. digits]
// [e [sign] digits], spaces around) and appends it rounded half away from
// zero to scale fraction digits, with exactly scale fraction digits.
func appendDecimal(dst, b []byte, scale int, what string) ([]byte, error) {
	if canonicalDecimal(b, scale) {
		return append(dst, b...), nil
	}
	b = trimSpace(b)
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	intD := b[:i]
	var fracD []byte
	if i < len(b) && b[i] == '.' {
		j := i + 1
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		fracD = b[i+1 : j]
		i = j
	}
	if len(intD)+len(fracD) == 0 {
		return dst, fmt.Errorf("not %s", what)
	}
	exp := 0
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '-' || b[i] == '+') {
			eneg = b[i] == '-'
			i++
		}
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if exp < 1<<20 {
				exp = exp*10 + int(b[i]-'0')
			}
			i++
		}
		if i == j {
			return dst, fmt.Errorf("not %s: exponent without digits", what)
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(b) {
		return dst, fmt.Errorf("not %s", what)
	}
	// The digits D = intD ++ fracD without leading zeros; value = D * 10^e.
	nd := len(intD) + len(fracD)
	digit := func(k int) byte {
		if k < len(intD) {
			return intD[k]
		}
		return fracD[k-len(intD)]
	}
	lead := 0
	for lead < nd && digit(lead) == '0' {
		lead++
	}
	e := exp - len(fracD)
	// K = round(D * 10^(e+scale)) is the result without its decimal point.
	var kbuf [maxDigits + 1]byte
	k := kbuf[:0]
	if lead < nd {
		shift := e + scale
		keep := nd - lead + shift // digits of D kept
		if shift >= 0 {
			keep = nd - lead
		}
		if keep > maxDigits || shift > maxDigits {
			return dst, errors.New("out of range")
		}
		for p := 0; p < keep; p++ {
			k = append(k, digit(lead+p))
		}
		if shift > 0 {
			if len(k)+shift > maxDigits {
				return dst, errors.New("out of range")
			}
			for ; shift > 0; shift-- {
				k = append(k, '0')
			}
		} else if keep >= 0 && keep < nd-lead && digit(lead+keep) >= '5' {
			// Round half away from zero: add one to K.
			p := len(k) - 1
			for ; p >= 0 && k[p] == '9'; p-- {
				k[p] = '0'
			}
			if p >= 0 {
				k[p]++
			} else {
				k = append(k, 0)
				copy(k[1:], k)
				k[0] = '1'
			}
		}
	}
	for len(k) > 0 && k[0] == '0' {
		k = k[1:]
	}
	if len(k) > 0 && neg {
		dst = append(dst, '-')
	}
	if len(k) <= scale { // no integer digits
		dst = append(dst, '0')
		if scale > 0 {
			dst = append(dst, '.')
		}
		for p := len(k); p < scale; p++ {
			dst = append(dst, '0')
		}
		return append(dst, k...), nil
	}
	dst = append(dst, k[:len(k)-scale]...)
	if scale > 0 {
		dst = append(dst, '.')
		dst = append(dst, k[len(k)-scale:]...)
	}
	return dst, nil
}

// canonicalDecimal reports whether b is already what appendDecimal makes
// of it: an optional "-", an integer part without leading zeros, and for
// scale > 0 a point and exactly scale digits; not a negative zero. Dumps
// written from a server's text hold numbers this way, and they are then
// appended as they are.
func canonicalDecimal(b []byte, scale int) bool {
	if len(b) == 0 || len(b) > 64 {
		return false
	}
	neg := b[0] == '-'
	i := 0
	if neg {
		i = 1
	}
	intStart := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	intLen := i - intStart
	if intLen == 0 || intLen > 1 && b[intStart] == '0' {
		return false
	}
	nonzero := intLen > 1 || b[intStart] != '0'
	if scale == 0 {
		return i == len(b) && (!neg || nonzero)
	}
	if len(b)-i != scale+1 || b[i] != '.' {
		return false
	}
	for _, c := range b[i+1:] {
		if c < '0' || c > '9' {
			return false
		}
		if c != '0' {
			nonzero = true
		}
	}
	return !neg || nonzero
}

// appendYear reads a YEAR: the integer rule, then two-digit years 1-69 and
// 70-99 become 2001-2069 and 1970-1999. Zero is the zero year 0000 however
// it is spelled: the server prints it as "0" over the text protocol, so
// "0" must read as 0000 there, although a string '0' or '00' given to the
// server becomes 2000 (sql/field.cc Field_year::store).
func appendYear(dst, b []byte) ([]byte, error) {
	if len(b) == 4 && allDigits(b) {
		// Four digits the server prints as they are: append them so.
		v := int(b[0]-'0')*1000 + int(b[1]-'0')*100 + int(b[2]-'0')*10 + int(b[3]-'0')
		if v == 0 || v >= 1901 && v <= 2155 {
			return append(dst, b...), nil
		}
	}
	var nb [maxDigits + 2]byte
	t, err := appendDecimal(nb[:0], b, 0, "a year")
	if err != nil {
		return dst, err
	}
	n, err := strconv.Atoi(string(t))
	if err != nil || n < 0 || n >= 100 && n <= 1900 || n > 2155 {
		return dst, errors.New("year out of range")
	}
	if n > 0 && n < 70 {
		n += 2000
	} else if n >= 70 && n < 100 {
		n += 1900
	}
	return appendPad(dst, n, 4), nil
}

// appendPad appends v (>= 0) with at least width digits.
func appendPad(dst []byte, v, width int) []byte {
	var d [20]byte
	s := strconv.AppendInt(d[:0], int64(v), 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

func (s *spec) appendFloat(dst, b []byte) ([]byte, error) {
	t := trimSpace(b)
	for _, c := range t { // no Go-only syntax: inf, nan, hex, underscores
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return dst, errors.New("not a number")
		}
	}
	v, err := strconv.ParseFloat(string(t), 64)
	if err != nil || math.IsInf(v, 0) {
		return dst, errors.New("not a number, or out of range")
	}
	if s.kind == kFixedFloat || s.kind == kFixedDouble {
		// Field_real::truncate_double: floor, plus the fraction rounded
		// half to even (rint) to the declared decimals.
		p := math.Pow10(s.scale)
		fl := math.Floor(v)
		v = fl + math.RoundToEven((v-fl)*p)/p
	}
	if s.kind == kFloat || s.kind == kFixedFloat {
		f := float32(v)
		if math.IsInf(float64(f), 0) {
			return dst, errors.New("out of range for FLOAT")
		}
		v = float64(f)
	}
	var out []byte
	switch s.kind {
	case kFloat:
		if v == 0 {
			return append(dst, '0'), nil
		}
		out = strconv.AppendFloat(dst, v, 'g', 6, 32)
	case kDouble:
		if v == 0 {
			return append(dst, '0'), nil
		}
		out = strconv.AppendFloat(dst, v, 'g', -1, 64)
	default:
		out = strconv.AppendFloat(dst, v, 'f', s.scale, 64)
		if out[len(dst)] == '-' && allZero(out[len(dst)+1:]) {
			out = append(out[:len(dst)], out[len(dst)+1:]...)
		}
	}
	return out, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c >= '1' && c <= '9' {
			return false
		}
	}
	return true
}

func (s *spec) appendBit(dst, b []byte) ([]byte, error) {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) > 8 {
		return dst, fmt.Errorf("too long for bit(%d)", s.n)
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	if s.n < 64 && v>>uint(s.n) != 0 {
		return dst, fmt.Errorf("too long for bit(%d)", s.n)
	}
	return strconv.AppendUint(dst, v, 10), nil
}

// member finds the member b names, as the server does for a string: exact,
// then ignoring trailing spaces, then case-insensitively; -1 if none.
func (s *spec) member(b []byte) int {
	for i, m := range s.members {
		if string(b) == m {
			return i
		}
	}
	t := bytes.TrimRight(b, " ")
	for i, m := range s.members {
		if string(t) == m {
			return i
		}
	}
	for i, m := range s.members {
		if bytes.EqualFold(t, []byte(m)) {
			return i
		}
	}
	return -1
}

func (s *spec) appendSet(dst, b []byte) ([]byte, error) {
	var mask uint64
	if len(b) > 0 {
		for rest := b; ; {
			part := rest
			i := bytes.IndexByte(rest, ',')
			if i >= 0 {
				part = rest[:i]
			}
			k := s.member(part)
			if k < 0 {
				// A number that names no member is a bit mask.
				v, err := strconv.ParseUint(string(trimSpace(b)), 10, 64)
				if err != nil || len(s.members) < 64 && v>>uint(len(s.members)) != 0 {
					return dst, fmt.Errorf("%q is not a member of the set", part)
				}
				mask = v
				break
			}
			mask |= 1 << uint(k)
			if i < 0 {
				break
			}
			rest = rest[i+1:]
		}
	}
	first := true
	for k, m := range s.members {
		if mask&(1<<uint(k)) == 0 {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, m...)
	}
	return dst, nil
}

// appendJSON re-encodes a JSON document with sorted keys and no spaces;
// numbers keep their text.
func appendJSON(dst, b []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return dst, fmt.Errorf("not JSON: %v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return dst, errors.New("not JSON: text after the value")
	}
	var out bytes.Buffer
	e := json.NewEncoder(&out)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return dst, fmt.Errorf("not JSON: %v", err)
	}
	return append(dst, bytes.TrimSuffix(out.Bytes(), []byte{'\n'})...), nil
}

// clock is a parsed DATE, DATETIME or TIME value.
type clock struct {
	y, mo, d   int
	h, mi, sec int // h may exceed 23 for TIME
	frac       []byte
	neg        bool
}

// digitsOf reads a run of digits at b[i:].
func digitsOf(b []byte, i int) (v, n int) {
	for i+n < len(b) && b[i+n] >= '0' && b[i+n] <= '9' && n < 9 {
		v = v*10 + int(b[i+n]-'0')
		n++
	}
	return v, n
}

func isPunct(c byte) bool {
	return c > ' ' && c < 0x7f && !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z')
}

func twoDigitYear(y, n int) int {
	if n <= 2 {
		if y < 70 {
			return y + 2000
		}
		return y + 1900
	}
	return y
}

var errDateTime = errors.New("not a date/time value")

// parseDateTime reads a date with an optional time of day. hasTime says the
// time part was there.
func parseDateTime(b []byte) (c clock, hasTime bool, err error) {
	b = trimSpace(b)
	// Digits only: YYYYMMDD[HHMMSS[.f]] or YYMMDD[HHMMSS[.f]].
	if n := digitRun(b); n > 0 && (n == len(b) || b[n] == '.') {
		d := b[:n]
		if n < len(b) {
			if c.frac = b[n+1:]; !allDigits(c.frac) {
				return c, false, errDateTime
			}
		}
		num := func(p, w int) int { x, _ := digitsOf(d[p:p+w], 0); return x }
		switch len(d) {
		case 14:
			c.y, c.mo, c.d, c.h, c.mi, c.sec = num(0, 4), num(4, 2), num(6, 2), num(8, 2), num(10, 2), num(12, 2)
			hasTime = true
		case 12:
			c.y, c.mo, c.d, c.h, c.mi, c.sec = twoDigitYear(num(0, 2), 2), num(2, 2), num(4, 2), num(6, 2), num(8, 2), num(10, 2)
			hasTime = true
		case 8:
			c.y, c.mo, c.d = num(0, 4), num(4, 2), num(6, 2)
		case 6:
			c.y, c.mo, c.d = twoDigitYear(num(0, 2), 2), num(2, 2), num(4, 2)
		default:
			return c, false, errDateTime
		}
		if !hasTime && c.frac != nil {
			return c, false, errDateTime
		}
		return c, hasTime, c.check()
	}
	i := 0
	var parts [3]int
	for k := 0; k < 3; k++ {
		if k > 0 {
			if i >= len(b) || !isPunct(b[i]) {
				return c, false, errDateTime
			}
			i++
		}
		v, n := digitsOf(b, i)
		if n == 0 || k == 0 && n > 4 || k > 0 && n > 2 {
			return c, false, errDateTime
		}
		if k == 0 {
			v = twoDigitYear(v, n)
		}
		parts[k] = v
		i += n
	}
	c.y, c.mo, c.d = parts[0], parts[1], parts[2]
	if i == len(b) {
		return c, false, c.check()
	}
	switch {
	case b[i] == 'T':
		i++
	case b[i] == ' ':
		for i < len(b) && b[i] == ' ' {
			i++
		}
	default:
		return c, false, errDateTime
	}
	var t [3]int
	k := 0
	for ; k < 3; k++ {
		if k > 0 {
			if i >= len(b) || b[i] == '.' || !isPunct(b[i]) {
				break
			}
			i++
		}
		v, n := digitsOf(b, i)
		if n == 0 || n > 2 {
			return c, false, errDateTime
		}
		t[k] = v
		i += n
	}
	c.h, c.mi, c.sec = t[0], t[1], t[2]
	if i < len(b) && b[i] == '.' {
		if k < 3 {
			return c, false, errDateTime
		}
		c.frac = b[i+1:]
		if !allDigits(c.frac) {
			return c, false, errDateTime
		}
		i = len(b)
	}
	if i != len(b) {
		return c, false, errDateTime
	}
	return c, true, c.check()
}

// digitRun counts the digits at the start of b.
func digitRun(b []byte) int {
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	return n
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (c *clock) check() error {
	if c.mo > 12 || c.d > 31 || c.h > 23 || c.mi > 59 || c.sec > 59 {
		return errors.New("date/time part out of range")
	}
	return nil
}

// fraction returns the first scale fraction digits of c.frac, padded with
// zeros, and whether the dropped digits round them up (carry past the
// seconds when all are nines).
func fraction(frac []byte, scale int, trunc bool) (out [6]byte, up bool) {
	for i := 0; i < scale; i++ {
		out[i] = '0'
		if i < len(frac) {
			out[i] = frac[i]
		}
	}
	if trunc || len(frac) <= scale || frac[scale] < '5' {
		return out, false
	}
	for i := scale - 1; i >= 0; i-- {
		if out[i] != '9' {
			out[i]++
			return out, false
		}
		out[i] = '0'
	}
	return out, true
}

func (s *spec) appendDateTime(dst, b []byte) ([]byte, error) {
	if s.canonicalDateTime(b) {
		return append(dst, b...), nil
	}
	c, _, err := parseDateTime(b)
	if err != nil {
		return dst, err
	}
	if s.kind == kDate { // the server drops a time part given to a DATE
		return c.appendDate(dst), nil
	}
	f, up := fraction(c.frac, s.scale, s.col.TruncFraction)
	if up && c.carry() == 24 {
		c.h = 0
		if c.y > 0 && c.mo > 0 && c.d > 0 {
			t := time.Date(c.y, time.Month(c.mo), c.d+1, 0, 0, 0, 0, time.UTC)
			c.y, c.mo, c.d = t.Year(), int(t.Month()), t.Day()
		}
	}
	dst = c.appendDate(dst)
	dst = append(dst, ' ')
	return c.appendClock(dst, f[:s.scale]), nil
}

// The text forms of the fast paths: 'd' a digit, anything else itself;
// cut to the column's length (a DATE is the first 10, no fraction: 19).
const (
	dateTimeLayout = "dddd-dd-dd dd:dd:dd.dddddd"
	timeLayout     = "dd:dd:dd.dddddd"
)

// fitsLayout reports whether b has layout's length, digits where it says
// 'd' and its other bytes where it has them.
func fitsLayout(b []byte, layout string) bool {
	if len(b) != len(layout) {
		return false
	}
	for i, c := range b {
		if l := layout[i]; l == 'd' {
			if c < '0' || c > '9' {
				return false
			}
		} else if c != l {
			return false
		}
	}
	return true
}

// canonicalDateTime reports whether b is already what appendDateTime
// makes of it: "YYYY-MM-DD" for a DATE, "YYYY-MM-DD HH:MM:SS" with exactly
// the column's fraction digits otherwise, every part in range.
func (s *spec) canonicalDateTime(b []byte) bool {
	n := 10
	if s.kind == kDateTime {
		n = 19
		if s.scale > 0 {
			n += 1 + s.scale
		}
	}
	if n > len(dateTimeLayout) || !fitsLayout(b, dateTimeLayout[:n]) {
		return false
	}
	two := func(i int) int { return int(b[i]-'0')*10 + int(b[i+1]-'0') }
	if two(5) > 12 || two(8) > 31 {
		return false
	}
	return s.kind == kDate || two(11) <= 23 && two(14) <= 59 && two(17) <= 59
}

// carry adds the second a rounded-up fraction carries and returns the hour.
func (c *clock) carry() int {
	if c.sec++; c.sec == 60 {
		c.sec, c.mi = 0, c.mi+1
	}
	if c.mi == 60 {
		c.mi, c.h = 0, c.h+1
	}
	return c.h
}

func (c *clock) appendDate(dst []byte) []byte {
	dst = appendPad(dst, c.y, 4)
	dst = append(dst, '-')
	dst = appendPad(dst, c.mo, 2)
	dst = append(dst, '-')
	return appendPad(dst, c.d, 2)
}

// appendClock appends HH:MM:SS[.f].
func (c *clock) appendClock(dst, f []byte) []byte {
	dst = appendPad(dst, c.h, 2)
	dst = append(dst, ':')
	dst = appendPad(dst, c.mi, 2)
	dst = append(dst, ':')
	dst = appendPad(dst, c.sec, 2)
	if len(f) > 0 {
		dst = append(dst, '.')
		dst = append(dst, f...)
	}
	return dst
}

// parseTime reads [-][D ]H[:MM[:SS]][.f], [-]digits[.f] (SS, MMSS or
// H..HMMSS) or a datetime, whose time of day counts.
func parseTime(b []byte) (c clock, err error) {
	b = trimSpace(b)
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = trimSpace(b[1:])
	}
	sp := bytes.IndexByte(b, ' ')
	days, hasDays := 0, false
	if sp >= 0 && digitRun(b) == sp && sp <= 5 {
		days, _ = digitsOf(b, 0)
		hasDays = true
		b = trimSpace(b[sp:])
	} else if sp >= 0 || bytes.IndexByte(b, '-') > 0 || bytes.IndexByte(b, 'T') > 0 {
		d, hasTime, err := parseDateTime(b)
		if err != nil || !hasTime {
			return c, errDateTime
		}
		d.neg = neg
		return d, nil
	}
	c.neg = neg
	num := b
	if dot := bytes.IndexByte(b, '.'); dot >= 0 {
		num, c.frac = b[:dot], b[dot+1:]
		if !allDigits(c.frac) {
			return c, errDateTime
		}
	}
	switch {
	case bytes.IndexByte(num, ':') >= 0:
		nparts := bytes.Count(num, []byte{':'}) + 1
		if nparts > 3 || nparts == 2 && c.frac != nil {
			return c, errDateTime
		}
		var t [3]int
		rest := num
		for k := 0; k < nparts; k++ {
			p := rest
			if j := bytes.IndexByte(rest, ':'); j >= 0 {
				p, rest = rest[:j], rest[j+1:]
			}
			n := digitRun(p)
			if n == 0 || n != len(p) || k == 0 && n > 7 || k > 0 && n > 2 {
				return c, errDateTime
			}
			t[k], _ = digitsOf(p, 0)
		}
		c.h, c.mi, c.sec = t[0], t[1], t[2]
	case hasDays: // "D HH"
		n := digitRun(num)
		if n == 0 || n != len(num) || n > 2 || c.frac != nil {
			return c, errDateTime
		}
		c.h, _ = digitsOf(num, 0)
	default: // SS, MMSS, H..HMMSS
		n := digitRun(num)
		if n == 0 || n != len(num) || n > 9 {
			return c, errDateTime
		}
		v, _ := digitsOf(num, 0)
		c.sec, v = v%100, v/100
		c.mi, c.h = v%100, v/100
	}
	c.h += days * 24
	if c.mi > 59 || c.sec > 59 {
		return c, errors.New("time part out of range")
	}
	return c, nil
}

func (s *spec) appendTime(dst, b []byte) ([]byte, error) {
	if s.canonicalTime(b) {
		return append(dst, b...), nil
	}
	c, err := parseTime(b)
	if err != nil {
		return dst, err
	}
	f, up := fraction(c.frac, s.scale, s.col.TruncFraction)
	if up {
		c.carry()
	}
	if c.neg && (c.h != 0 || c.mi != 0 || c.sec != 0 || !allZero(f[:s.scale])) {
		dst = append(dst, '-')
	}
	return c.appendClock(dst, f[:s.scale]), nil
}

// canonicalTime reports whether b is already what appendTime makes of it:
// "HH:MM:SS" with two hour digits and exactly the column's fraction
// digits, minutes and seconds in range.
func (s *spec) canonicalTime(b []byte) bool {
	n := 8
	if s.scale > 0 {
		n += 1 + s.scale
	}
	if n > len(timeLayout) || !fitsLayout(b, timeLayout[:n]) {
		return false
	}
	return int(b[3]-'0')*10+int(b[4]-'0') <= 59 && int(b[6]-'0')*10+int(b[7]-'0') <= 59
}
