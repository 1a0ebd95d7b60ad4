package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"storm/import/storage"
)

// A Parquet chunk is a run of whole row groups. Its offsets count rows, not
// bytes: Chunk.Start and End are the indexes of its first row and of the
// row after its last, a Row's End is the index of the next row (the resume
// point), and its Line is its index plus one, so errors name row numbers.

// ParquetColumn is one column of a Parquet file as storm loads it.
type ParquetColumn struct {
	Name string
	Type string // the Parquet type, physical and logical, as errors name it
	// Scale is a DECIMAL's number of fraction digits; -1 for other types.
	Scale int
	conv  pqConv
	unit  time.Duration // TIME and TIMESTAMP
	utc   bool          // TIMESTAMP: isAdjustedToUTC, an instant
}

type pqConv int

const (
	pqBool pqConv = iota
	pqInt32
	pqUint32
	pqInt64
	pqUint64
	pqFloat
	pqDouble
	pqBytes
	pqDecimal
	pqDate
	pqTime
	pqTimestamp
	pqInt96
)

// ParquetFile is what the footer of a Parquet file says.
type ParquetFile struct {
	Columns   []ParquetColumn
	RowGroups []ParquetRowGroup
	Rows      int64
}

// ParquetRowGroup is one row group: its rows and its compressed bytes.
type ParquetRowGroup struct {
	Rows  int64
	Bytes int64
}

// OpenParquet reads the footer of a Parquet file of size bytes from r and
// checks that storm can load each column: a flat column (not a group, a
// list or a map) of a type listed in docs/parquet.md. name is how errors
// name the file. It reads nothing but the footer, so r may be a remote
// object.
func OpenParquet(r io.ReaderAt, size int64, name string) (*parquet.File, *ParquetFile, error) {
	f, err := parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: not a readable Parquet file (truncated, or a corrupt footer): %w", name, err)
	}
	md := f.Metadata()
	if b, ok := r.(*pqBuffer); ok {
		b.setLayout(md)
	}
	info := &ParquetFile{Rows: md.NumRows}
	cols, err := parquetColumns(name, md.Schema)
	if err != nil {
		return nil, nil, err
	}
	info.Columns = cols
	var rows int64
	for _, g := range md.RowGroups {
		info.RowGroups = append(info.RowGroups, ParquetRowGroup{Rows: g.NumRows, Bytes: g.TotalCompressedSize})
		rows += g.NumRows
	}
	if rows != md.NumRows {
		return nil, nil, fmt.Errorf("%s: corrupt Parquet footer: its row groups hold %d rows, it says %d", name, rows, md.NumRows)
	}
	if len(f.RowGroups()) != len(md.RowGroups) {
		return nil, nil, fmt.Errorf("%s: corrupt Parquet footer: %d row groups listed, %d readable", name, len(md.RowGroups), len(f.RowGroups()))
	}
	return f, info, nil
}

// InspectParquet is OpenParquet on a file in a dump, local or in S3 (then
// as the version want pins, when set).
func InspectParquet(path string, want storage.Version) (*ParquetFile, error) {
	file, err := storage.Open(context.Background(), path, want)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	_, info, err := OpenParquet(parquetReaderAt(file, path), file.Size(), path)
	return info, err
}

// parquetReaderAt is what parquet-go reads a file through: a remote object
// behind a pqBuffer, so that its small reads are not each a GET; a local
// file as it is (a small read is a pread).
func parquetReaderAt(file storage.Object, path string) io.ReaderAt {
	if storage.IsRemote(path) {
		return newPQBuffer(file, file.Size(), pqReadLimit)
	}
	return file
}

// parquetColumns maps the schema's top-level fields to columns, naming
// every field storm cannot load.
func parquetColumns(path string, schema []format.SchemaElement) ([]ParquetColumn, error) {
	if len(schema) == 0 {
		return nil, fmt.Errorf("%s: corrupt Parquet footer: no schema", path)
	}
	var cols []ParquetColumn
	var bad []string
	i := 1
	for k := int32(0); k < schema[0].NumChildren.V && i < len(schema); k++ {
		el := schema[i]
		i += subtree(schema, i)
		c, why := parquetColumn(el)
		if why != "" {
			bad = append(bad, fmt.Sprintf("column %q (Parquet type %s): %s", el.Name, c.Type, why))
			continue
		}
		cols = append(cols, c)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s: %s", path, strings.Join(bad, "; "))
	}
	return cols, nil
}

// subtree is the number of schema elements of the field at i, its own and
// its descendants'.
func subtree(schema []format.SchemaElement, i int) int {
	n := 1
	for k := int32(0); k < schema[i].NumChildren.V && i+n < len(schema); k++ {
		n += subtree(schema, i+n)
	}
	return n
}

// parquetColumn says how storm loads a top-level field, or why it can't.
func parquetColumn(el format.SchemaElement) (ParquetColumn, string) {
	c := ParquetColumn{Name: el.Name, Scale: -1}
	lt := el.LogicalType.Value
	var ct *deprecated.ConvertedType
	if el.ConvertedType.Valid {
		ct = &el.ConvertedType.V
	}
	switch {
	case el.NumChildren.V > 0:
		c.Type = "group"
		if lt != nil {
			c.Type += " " + lt.String()
		} else if ct != nil {
			c.Type += " " + convertedName(*ct)
		}
		return c, "a nested field (group, list or map); storm loads flat columns only"
	case !el.Type.Valid:
		c.Type = "(none)"
		return c, "a leaf with no physical type"
	}
	pt := el.Type.V
	c.Type = pt.String()
	if lt != nil {
		c.Type += " " + lt.String()
	} else if ct != nil {
		c.Type += " " + convertedName(*ct)
	}
	if el.RepetitionType.Valid && el.RepetitionType.V == format.Repeated {
		return c, "a repeated field (a list); storm loads flat columns only"
	}
	// The logical type first; files of old writers have only the
	// converted type, which says the same for the types here.
	switch t := lt.(type) {
	case nil:
	case *format.StringType, *format.EnumType, *format.JsonType, *format.UUIDType, *format.BsonType:
		if pt == format.ByteArray || pt == format.FixedLenByteArray {
			c.conv = pqBytes
			return c, ""
		}
	case *format.NullType:
		c.conv = pqBytes // every value is NULL
		return c, ""
	case *format.IntType:
		switch {
		case pt == format.Int32 && t.IsSigned:
			c.conv = pqInt32
		case pt == format.Int32:
			c.conv = pqUint32
		case pt == format.Int64 && t.IsSigned:
			c.conv = pqInt64
		case pt == format.Int64:
			c.conv = pqUint64
		default:
			return c, "an integer annotation on a physical type that holds none"
		}
		return c, ""
	case *format.DecimalType:
		return decimalColumn(c, pt, t.Scale)
	case *format.DateType:
		if pt == format.Int32 {
			c.conv = pqDate
			return c, ""
		}
	case *format.TimeType:
		if pt == format.Int32 || pt == format.Int64 {
			c.conv, c.unit = pqTime, t.Unit.Value.Duration()
			return c, ""
		}
	case *format.TimestampType:
		if pt == format.Int64 {
			c.conv, c.unit, c.utc = pqTimestamp, t.Unit.Value.Duration(), t.IsAdjustedToUTC
			return c, ""
		}
	default:
		return c, "a logical type storm does not load"
	}
	if lt != nil {
		return c, "a logical type on a physical type that can't hold it"
	}
	if ct != nil {
		switch *ct {
		case deprecated.UTF8, deprecated.Enum, deprecated.Json, deprecated.Bson:
			if pt == format.ByteArray || pt == format.FixedLenByteArray {
				c.conv = pqBytes
				return c, ""
			}
		case deprecated.Int8, deprecated.Int16, deprecated.Int32:
			if pt == format.Int32 {
				c.conv = pqInt32
				return c, ""
			}
		case deprecated.Uint8, deprecated.Uint16, deprecated.Uint32:
			if pt == format.Int32 {
				c.conv = pqUint32
				return c, ""
			}
		case deprecated.Int64:
			if pt == format.Int64 {
				c.conv = pqInt64
				return c, ""
			}
		case deprecated.Uint64:
			if pt == format.Int64 {
				c.conv = pqUint64
				return c, ""
			}
		case deprecated.Decimal:
			return decimalColumn(c, pt, el.Scale.V)
		case deprecated.Date:
			if pt == format.Int32 {
				c.conv = pqDate
				return c, ""
			}
		case deprecated.TimeMillis:
			if pt == format.Int32 {
				c.conv, c.unit = pqTime, time.Millisecond
				return c, ""
			}
		case deprecated.TimeMicros:
			if pt == format.Int64 {
				c.conv, c.unit = pqTime, time.Microsecond
				return c, ""
			}
		case deprecated.TimestampMillis, deprecated.TimestampMicros:
			if pt == format.Int64 {
				c.conv, c.unit, c.utc = pqTimestamp, time.Millisecond, true
				if *ct == deprecated.TimestampMicros {
					c.unit = time.Microsecond
				}
				return c, ""
			}
		}
		return c, "a converted type storm does not load"
	}
	switch pt {
	case format.Boolean:
		c.conv = pqBool
	case format.Int32:
		c.conv = pqInt32
	case format.Int64:
		c.conv = pqInt64
	case format.Int96:
		c.conv = pqInt96 // the legacy timestamp of Impala, Hive and Spark
	case format.Float:
		c.conv = pqFloat
	case format.Double:
		c.conv = pqDouble
	case format.ByteArray, format.FixedLenByteArray:
		c.conv = pqBytes
	default:
		return c, "a physical type storm does not load"
	}
	return c, ""
}

func decimalColumn(c ParquetColumn, pt format.Type, scale int32) (ParquetColumn, string) {
	switch pt {
	case format.Int32, format.Int64, format.FixedLenByteArray, format.ByteArray:
	default:
		return c, "a DECIMAL on a physical type that can't hold one"
	}
	if scale < 0 {
		return c, "a DECIMAL with a negative scale"
	}
	c.conv, c.Scale = pqDecimal, int(scale)
	return c, ""
}

// splitParquet cuts a Parquet file into chunks of whole row groups of about
// shardSize compressed bytes each (Chunk.DataBytes): a row group is never cut.
func splitParquet(f DataFile, shardSize int64) (FileSplit, error) {
	pin := f.Version()
	info, err := InspectParquet(f.Path, pin)
	if err != nil {
		return FileSplit{}, err
	}
	var chunks []Chunk
	var row, bytes int64
	start := int64(0)
	for i, g := range info.RowGroups {
		row += g.Rows
		bytes += g.Bytes
		if bytes >= shardSize || i == len(info.RowGroups)-1 {
			chunks = append(chunks, Chunk{Path: f.Path, Format: FormatParquet, Start: start, End: row, StartLine: start + 1, DataBytes: bytes,
				Size: pin.Size, ETag: pin.ETag})
			start, bytes = row, 0
		}
	}
	if len(chunks) == 0 { // no row group: no rows
		chunks = append(chunks, Chunk{Path: f.Path, Format: FormatParquet, Start: 0, End: 0, StartLine: 1})
	}
	return FileSplit{Chunks: chunks, Parquet: info}, nil
}

// parquetReader reads the rows of a run of row groups, one row group at a
// time: its memory is about a page of each column, and the rows of one
// read.
type parquetReader struct {
	path   string
	file   *parquet.File
	close  func() error
	cols   []ParquetColumn
	names  []string
	groups []parquet.RowGroup
	first  []int64 // index of each group's first row
	loc    *time.Location

	g      int // group of rows
	rows   parquet.Rows
	next   int64 // index of the next row to return
	end    int64
	buf    []parquet.Row
	n, i   int // rows in buf, and the next to return
	data   []byte
	ends   []int
	nulls  []bool
	values []Value
	err    error
}

// openParquet opens a reader over the rows [from, ch.End) of a Parquet chunk.
func openParquet(ch Chunk, from int64) (Reader, error) {
	// A zone storm can't place matters only to a file with instants.
	loc, tzErr := timeZone(ch.TimeZone)
	file, err := storage.Open(context.Background(), ch.Path, storage.Version{Size: ch.Size, ETag: ch.ETag})
	if err != nil {
		return nil, err
	}
	r, err := newParquetReader(parquetReaderAt(file, ch.Path), file.Size(), ch.Path, from, ch.End, loc)
	if err != nil {
		file.Close()
		return nil, err
	}
	if tzErr != nil {
		for _, c := range r.cols {
			if c.utc || c.conv == pqInt96 {
				file.Close()
				return nil, fmt.Errorf("%s: column %q (Parquet type %s): %w", ch.Path, c.Name, c.Type, tzErr)
			}
		}
	}
	r.close = file.Close
	return r, nil
}

// newParquetReader reads rows [from, end) (end < 0: to the last) of the
// Parquet file of size bytes in r.
func newParquetReader(ra io.ReaderAt, size int64, name string, from, end int64, loc *time.Location) (*parquetReader, error) {
	f, info, err := OpenParquet(ra, size, name)
	if err != nil {
		return nil, err
	}
	if end < 0 || end > info.Rows {
		end = info.Rows
	}
	r := &parquetReader{path: name, file: f, cols: info.Columns, groups: f.RowGroups(), next: from, end: end, loc: loc,
		buf: make([]parquet.Row, 64), g: -1}
	for _, c := range info.Columns {
		r.names = append(r.names, c.Name)
	}
	var row int64
	for _, g := range info.RowGroups {
		r.first = append(r.first, row)
		row += g.Rows
	}
	return r, nil
}

func (r *parquetReader) Columns() []string { return r.names }

func (r *parquetReader) Next() (Row, error) {
	if r.err != nil {
		return Row{}, r.err
	}
	if r.next >= r.end {
		return Row{}, io.EOF
	}
	if r.i >= r.n {
		if err := r.fill(); err != nil {
			r.err = err
			return Row{}, err
		}
	}
	row := r.buf[r.i]
	r.i++
	line := r.next + 1
	if err := r.convert(row, line); err != nil {
		r.err = err
		return Row{}, err
	}
	r.next++
	return Row{Values: r.values, Line: line, End: r.next, NextLine: r.next + 1}, nil
}

// fill reads the next rows into buf, moving to the row group of r.next
// when the current one is done.
func (r *parquetReader) fill() error {
	for {
		if r.rows == nil || r.g < 0 || r.next >= r.first[r.g]+r.groups[r.g].NumRows() {
			if r.rows != nil {
				r.rows.Close()
				r.rows = nil
			}
			r.g = r.group(r.next)
			if r.g < 0 {
				return r.corrupt(r.next+1, fmt.Errorf("row %d is past the file's last row group", r.next+1))
			}
			r.rows = r.groups[r.g].Rows()
			if at := r.next - r.first[r.g]; at > 0 {
				if err := r.rows.SeekToRow(at); err != nil {
					return r.corrupt(r.next+1, err)
				}
			}
		}
		want := min(int64(len(r.buf)), r.end-r.next, r.first[r.g]+r.groups[r.g].NumRows()-r.next)
		n, err := r.rows.ReadRows(r.buf[:want])
		if n > 0 {
			r.n, r.i = n, 0
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return r.corrupt(r.next+1, err)
		}
		// The group ended before its row count said.
		return r.corrupt(r.next+1, fmt.Errorf("row group %d ends before its row %d", r.g, r.next-r.first[r.g]+1))
	}
}

// group returns the row group that holds row i, or -1.
func (r *parquetReader) group(i int64) int {
	for g := range r.groups {
		if i >= r.first[g] && i < r.first[g]+r.groups[g].NumRows() {
			return g
		}
	}
	return -1
}

func (r *parquetReader) corrupt(line int64, err error) error {
	return &ParseError{File: r.path, Line: line, Offset: line - 1, Reason: "truncated or corrupt Parquet data: " + err.Error()}
}

// convert decodes a Parquet row into r.values, as the text MySQL takes
// for each value.
func (r *parquetReader) convert(row parquet.Row, line int64) error {
	r.data, r.ends, r.nulls = r.data[:0], r.ends[:0], r.nulls[:0]
	if cap(r.ends) < len(r.cols) {
		r.ends = make([]int, 0, len(r.cols))
		r.nulls = make([]bool, 0, len(r.cols))
	}
	r.ends, r.nulls = r.ends[:len(r.cols)], r.nulls[:len(r.cols)]
	seen := 0
	for _, v := range row {
		k := v.Column()
		if k < 0 || k >= len(r.cols) {
			return &ParseError{File: r.path, Line: line, Offset: line - 1, Reason: fmt.Sprintf("value of column %d of %d", k, len(r.cols))}
		}
		if k != seen {
			return &ParseError{File: r.path, Line: line, Offset: line - 1, Reason: fmt.Sprintf("column %q: values out of order", r.cols[k].Name)}
		}
		seen++
		r.nulls[k] = v.IsNull()
		if !v.IsNull() {
			var err error
			if r.data, err = appendParquet(r.data, r.cols[k], v, r.loc); err != nil {
				return &ParseError{File: r.path, Line: line, Offset: line - 1, Reason: fmt.Sprintf("column %q: %v", r.cols[k].Name, err)}
			}
		}
		r.ends[k] = len(r.data)
	}
	if seen != len(r.cols) {
		return &ParseError{File: r.path, Line: line, Offset: line - 1, Reason: fmt.Sprintf("%d values for %d columns", seen, len(r.cols))}
	}
	if cap(r.values) < len(r.cols) {
		r.values = make([]Value, len(r.cols))
	}
	r.values = r.values[:len(r.cols)]
	from := 0
	for k, e := range r.ends {
		c := r.cols[k].conv
		r.values[k] = Value{Null: r.nulls[k], Data: r.data[from:e:e], Plain: c != pqBytes}
		from = e
	}
	return nil
}

// timeZone parses a MySQL time_zone value: "+HH:MM", "-HH:MM", a named
// zone, or "" for UTC. SYSTEM, the server's own zone, is not known here.
func timeZone(tz string) (*time.Location, error) {
	switch {
	case tz == "" || strings.EqualFold(tz, "UTC"):
		return time.UTC, nil
	case len(tz) == 6 && (tz[0] == '+' || tz[0] == '-') && tz[3] == ':':
		h, err1 := strconv.Atoi(tz[1:3])
		m, err2 := strconv.Atoi(tz[4:])
		if err1 != nil || err2 != nil {
			break
		}
		off := h*3600 + m*60
		if tz[0] == '-' {
			off = -off
		}
		return time.FixedZone(tz, off), nil
	case strings.EqualFold(tz, "SYSTEM"):
		return nil, fmt.Errorf("target.time-zone %q: the server's own zone is not known to storm, and Parquet timestamps adjusted to UTC are written in the target's zone: set it, e.g. \"+00:00\"", tz)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("target.time-zone %q: %w", tz, err)
	}
	return loc, nil
}

const (
	dateLayout = "2006-01-02"
	tsLayout   = "2006-01-02 15:04:05.000000"
)

// appendParquet appends v as text: integers in decimal, DECIMAL with its
// scale, DATE, TIME and TIMESTAMP as MySQL writes them (microseconds at
// most), an instant (isAdjustedToUTC) in loc, the target's time zone.
func appendParquet(dst []byte, c ParquetColumn, v parquet.Value, loc *time.Location) ([]byte, error) {
	switch c.conv {
	case pqBool:
		if v.Boolean() {
			return append(dst, '1'), nil
		}
		return append(dst, '0'), nil
	case pqInt32:
		return strconv.AppendInt(dst, int64(v.Int32()), 10), nil
	case pqUint32:
		return strconv.AppendUint(dst, uint64(uint32(v.Int32())), 10), nil
	case pqInt64:
		return strconv.AppendInt(dst, v.Int64(), 10), nil
	case pqUint64:
		return strconv.AppendUint(dst, uint64(v.Int64()), 10), nil
	case pqFloat:
		return strconv.AppendFloat(dst, float64(v.Float()), 'g', -1, 32), nil
	case pqDouble:
		return strconv.AppendFloat(dst, v.Double(), 'g', -1, 64), nil
	case pqBytes:
		return append(dst, v.ByteArray()...), nil
	case pqDecimal:
		return appendDecimal(dst, v, c.Scale)
	case pqDate:
		return time.Unix(int64(v.Int32())*86400, 0).UTC().AppendFormat(dst, dateLayout), nil
	case pqTime:
		var n int64
		if v.Kind() == parquet.Int32 {
			n = int64(v.Int32())
		} else {
			n = v.Int64()
		}
		return appendTime(dst, time.Duration(n)*c.unit), nil
	case pqTimestamp:
		var t time.Time
		switch c.unit {
		case time.Millisecond:
			t = time.UnixMilli(v.Int64())
		case time.Microsecond:
			t = time.UnixMicro(v.Int64())
		default:
			t = time.Unix(0, v.Int64())
		}
		if c.utc {
			t = t.In(loc)
		} else {
			t = t.UTC() // a wall-clock time, as written
		}
		return t.AppendFormat(dst, tsLayout), nil
	case pqInt96:
		i := v.Int96()
		nanos := int64(uint64(i[1])<<32 | uint64(i[0]))
		days := int64(i[2]) - 2440588 // the Julian day of 1970-01-01
		t := time.Unix(days*86400, nanos).In(loc)
		return t.AppendFormat(dst, tsLayout), nil
	}
	return dst, fmt.Errorf("no conversion for Parquet type %s", c.Type)
}

// appendTime writes a time of day as [-]HH:MM:SS.ffffff.
func appendTime(dst []byte, d time.Duration) []byte {
	if d < 0 {
		dst = append(dst, '-')
		d = -d
	}
	us := int64(d / time.Microsecond)
	h, us := us/3_600_000_000, us%3_600_000_000
	m, us := us/60_000_000, us%60_000_000
	s, us := us/1_000_000, us%1_000_000
	return fmt.Appendf(dst, "%02d:%02d:%02d.%06d", h, m, s, us)
}

// appendDecimal writes the unscaled integer of a DECIMAL (INT32, INT64, or
// big-endian two's complement bytes) with scale fraction digits.
func appendDecimal(dst []byte, v parquet.Value, scale int) ([]byte, error) {
	var digits string
	switch v.Kind() {
	case parquet.Int32:
		digits = strconv.FormatInt(int64(v.Int32()), 10)
	case parquet.Int64:
		digits = strconv.FormatInt(v.Int64(), 10)
	default:
		b := v.ByteArray()
		if len(b) == 0 {
			return dst, errors.New("a DECIMAL of no bytes")
		}
		n := new(big.Int).SetBytes(b)
		if b[0]&0x80 != 0 {
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b)*8)))
		}
		digits = n.String()
	}
	neg := strings.HasPrefix(digits, "-")
	if neg {
		dst = append(dst, '-')
		digits = digits[1:]
	}
	if scale == 0 {
		return append(dst, digits...), nil
	}
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	dst = append(dst, digits[:len(digits)-scale]...)
	dst = append(dst, '.')
	return append(dst, digits[len(digits)-scale:]...), nil
}

func (r *parquetReader) Close() error {
	if r.rows != nil {
		r.rows.Close()
		r.rows = nil
	}
	if r.close == nil {
		return nil
	}
	err := r.close()
	r.close = nil
	return err
}

// convertedName names a legacy converted type as the Parquet spec does.
func convertedName(t deprecated.ConvertedType) string {
	names := []string{"UTF8", "MAP", "MAP_KEY_VALUE", "LIST", "ENUM", "DECIMAL", "DATE", "TIME_MILLIS", "TIME_MICROS",
		"TIMESTAMP_MILLIS", "TIMESTAMP_MICROS", "UINT_8", "UINT_16", "UINT_32", "UINT_64", "INT_8", "INT_16", "INT_32",
		"INT_64", "JSON", "BSON", "INTERVAL"}
	if int(t) >= 0 && int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("CONVERTED_TYPE(%d)", int(t))
}
