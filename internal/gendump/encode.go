package gendump

import (
	"bufio"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
)

// kind says how a field is written to a data file; the field's bytes are the
// same in every format and equal the text MariaDB returns.
type kind uint8

const (
	kindNull kind = iota
	kindNum       // bare in CSV and SQL
	kindText      // quoted and escaped
	kindBin       // quoted in CSV, a hex literal in SQL
)

// row is one generated record: its fields' bytes back to back in buf, where
// each ends, and their kinds. It is reused for every row of a table.
type row struct {
	buf   []byte
	ends  []int
	kinds []kind
	// rawCtl asks the CSV writer to leave newlines, CRs and tabs of text
	// fields unescaped inside the quotes: both forms are valid, and readers
	// must handle quoted line breaks.
	rawCtl bool
}

func (w *row) reset() {
	w.buf, w.ends, w.kinds, w.rawCtl = w.buf[:0], w.ends[:0], w.kinds[:0], false
}

func (w *row) end(k kind) {
	w.ends = append(w.ends, len(w.buf))
	w.kinds = append(w.kinds, k)
}

func (w *row) null()           { w.end(kindNull) }
func (w *row) int(v int64)     { w.buf = strconv.AppendInt(w.buf, v, 10); w.end(kindNum) }
func (w *row) uint(v uint64)   { w.buf = strconv.AppendUint(w.buf, v, 10); w.end(kindNum) }
func (w *row) text(s string)   { w.buf = append(w.buf, s...); w.end(kindText) }
func (w *row) date(days int64) { w.buf = appendDate(w.buf, days); w.end(kindText) }

func (w *row) bool(v bool) {
	if v {
		w.int(1)
	} else {
		w.int(0)
	}
}

// datetime appends a DATETIME or, with frac, DATETIME(6) value; secs count
// from 1970-01-01 00:00:00 with no time zone.
func (w *row) datetime(secs int64, micros int64, frac bool) {
	w.buf = appendDateTime(w.buf, secs, micros, frac)
	w.end(kindText)
}

// decimal appends ±ip.frac with scale fraction digits, the way MariaDB prints
// a DECIMAL(p,scale): all fraction digits, no "-" on zero.
func (w *row) decimal(neg bool, ip, frac uint64, scale int) {
	if neg && (ip != 0 || frac != 0) {
		w.buf = append(w.buf, '-')
	}
	w.buf = strconv.AppendUint(w.buf, ip, 10)
	w.buf = append(w.buf, '.')
	w.buf = appendPadded(w.buf, frac, scale)
	w.end(kindNum)
}

// gen produces the rows of one table from its random stream.
type gen struct {
	t         *table
	r         *rand.Rand
	row       row
	customers int64 // ids of customers referenced by orders: 1..customers
	offset    int64 // Options.IDOffset
}

// next generates row i (0-based; rows must be asked for in order).
func (g *gen) next(i int64) {
	g.row.reset()
	g.t.fill(g, i+g.offset)
}

// pct is true with probability p percent.
func (g *gen) pct(p int) bool { return g.r.IntN(100) < p }

func (g *gen) pick(list []string) string { return list[g.r.IntN(len(list))] }

// between returns a uniform int64 in [lo, hi].
func (g *gen) between(lo, hi int64) int64 { return lo + g.r.Int64N(hi-lo+1) }

// --- CSV -------------------------------------------------------------------

// Escapes: the byte after the backslash, 0 for bytes written as they are.
// Only escapes that the project's reader and LOAD DATA both map back to the
// original byte are used.
var (
	csvEsc    = escTable(map[byte]byte{'\\': '\\', '"': '"', 0: '0', '\n': 'n', '\r': 'r', '\t': 't', 0x1a: 'Z'})
	csvEscRaw = escTable(map[byte]byte{'\\': '\\', '"': '"', 0: '0', 0x1a: 'Z'})
	sqlEsc    = escTable(map[byte]byte{'\\': '\\', '\'': '\'', '"': '"', 0: '0', '\n': 'n', '\r': 'r', '\t': 't', 0x1a: 'Z'})
)

func escTable(m map[byte]byte) (t [256]byte) {
	for c, e := range m {
		t[c] = e
	}
	return t
}

func appendEscaped(dst, v []byte, esc *[256]byte) []byte {
	from := 0
	for i, c := range v {
		if e := esc[c]; e != 0 {
			dst = append(dst, v[from:i]...)
			dst = append(dst, '\\', e)
			from = i + 1
		}
	}
	return append(dst, v[from:]...)
}

func appendCSVRow(dst []byte, w *row, term string) []byte {
	start := 0
	for i, end := range w.ends {
		if i > 0 {
			dst = append(dst, ',')
		}
		v := w.buf[start:end]
		start = end
		switch w.kinds[i] {
		case kindNull:
			dst = append(dst, `\N`...)
		case kindNum:
			dst = append(dst, v...)
		case kindText:
			esc := &csvEsc
			if w.rawCtl {
				esc = &csvEscRaw
			}
			dst = append(dst, '"')
			dst = appendEscaped(dst, v, esc)
			dst = append(dst, '"')
		case kindBin:
			dst = append(dst, '"')
			dst = appendEscaped(dst, v, &csvEsc)
			dst = append(dst, '"')
		}
	}
	return append(dst, term...)
}

// writeCSV writes rows [from, to) of g's table.
func writeCSV(w *bufio.Writer, g *gen, from, to int64, header, crlf bool) error {
	term := "\n"
	if crlf {
		term = "\r\n"
	}
	var line []byte
	if header {
		for i, c := range g.t.cols {
			if i > 0 {
				line = append(line, ',')
			}
			line = append(line, c.name...)
		}
		line = append(line, term...)
	}
	for i := from; i < to; i++ {
		g.next(i)
		line = appendCSVRow(line, &g.row, term)
		if _, err := w.Write(line); err != nil {
			return err
		}
		line = line[:0]
	}
	if len(line) > 0 { // a header without rows
		_, err := w.Write(line)
		return err
	}
	return nil
}

// --- SQL -------------------------------------------------------------------

const (
	stmtRows  = 500     // rows per INSERT, at most
	stmtBytes = 1 << 20 // and bytes, like mydumper's statement size
)

func appendSQLRow(dst []byte, w *row) []byte {
	dst = append(dst, '(')
	start := 0
	for i, end := range w.ends {
		if i > 0 {
			dst = append(dst, ',')
		}
		v := w.buf[start:end]
		start = end
		switch w.kinds[i] {
		case kindNull:
			dst = append(dst, "NULL"...)
		case kindNum:
			dst = append(dst, v...)
		case kindText:
			dst = append(dst, '\'')
			dst = appendEscaped(dst, v, &sqlEsc)
			dst = append(dst, '\'')
		case kindBin:
			if len(v) == 0 { // 0x with no digits is not a literal
				dst = append(dst, "''"...)
			} else {
				dst = append(dst, "0x"...)
				dst = hex.AppendEncode(dst, v)
			}
		}
	}
	return append(dst, ')')
}

// writeSQL writes rows [from, to) of g's table as multi-row INSERTs, one
// tuple per line as mydumper does.
func writeSQL(w *bufio.Writer, g *gen, from, to int64) error {
	t := g.t
	head := []byte("INSERT INTO `" + t.name + "` (")
	for i, c := range t.cols {
		if i > 0 {
			head = append(head, ',')
		}
		head = append(head, '`')
		head = append(head, c.name...)
		head = append(head, '`')
	}
	head = append(head, ") VALUES\n"...)

	line := []byte("/*!40101 SET NAMES binary*/;\n/*!40014 SET FOREIGN_KEY_CHECKS=0*/;\n" +
		"-- storm gendump: rows " + strconv.FormatInt(from+1, 10) + " to " + strconv.FormatInt(to, 10) + " of `" + t.name + "`\n")
	rows, size := 0, 0
	for i := from; i < to; i++ {
		if rows == 0 {
			line = append(line, head...)
		}
		g.next(i)
		n := len(line)
		line = appendSQLRow(line, &g.row)
		rows++
		size += len(line) - n
		if i == to-1 || rows >= stmtRows || size >= stmtBytes {
			line = append(line, ";\n"...)
			rows, size = 0, 0
		} else {
			line = append(line, ",\n"...)
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		line = line[:0]
	}
	return nil
}

// --- dates and numbers ------------------------------------------------------

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's algorithm), cheaper than going through time.Time per
// value.
func civil(days int64) (y, m, d int64) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// daysFrom is the inverse of civil.
func daysFrom(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func appendPadded(b []byte, v uint64, width int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for v > 0 || i > len(tmp)-width {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, tmp[i:]...)
}

func appendDate(b []byte, days int64) []byte {
	y, m, d := civil(days)
	b = appendPadded(b, uint64(y), 4)
	b = append(b, '-')
	b = appendPadded(b, uint64(m), 2)
	b = append(b, '-')
	return appendPadded(b, uint64(d), 2)
}

func appendDateTime(b []byte, secs, micros int64, frac bool) []byte {
	days, sod := secs/86400, secs%86400
	if sod < 0 {
		days, sod = days-1, sod+86400
	}
	b = appendDate(b, days)
	b = append(b, ' ')
	b = appendClock(b, uint64(sod))
	if frac {
		b = append(b, '.')
		b = appendPadded(b, uint64(micros), 6)
	}
	return b
}

// appendClock appends hh:mm:ss; hours may exceed 23 (TIME).
func appendClock(b []byte, s uint64) []byte {
	b = appendPadded(b, s/3600, 2)
	b = append(b, ':')
	b = appendPadded(b, s/60%60, 2)
	b = append(b, ':')
	return appendPadded(b, s%60, 2)
}
