// Package parquetgen writes Parquet files for storm's tests with Apache
// Arrow's Go implementation (pqarrow), another implementation than the one
// storm reads them with: a table of every column type storm maps, NULLs in
// each nullable column, several row groups, any compression. It returns
// each row's values as Go values, so a test can load the same rows another
// way (INSERT) and compare.
package parquetgen

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Kind is how a column's Go values are held.
type Kind int

const (
	Int       Kind = iota // int64
	Uint                  // uint64
	Decimal               // string, the exact decimal text
	Date                  // time.Time, UTC midnight
	Instant               // time.Time: a timestamp adjusted to UTC
	Wall                  // time.Time in UTC: a timestamp not adjusted to UTC, its wall clock
	TimeOfDay             // time.Duration
	Text                  // string
	Bytes                 // []byte
	Bool                  // bool
	Double                // float64
)

// Column is one column of the generated table.
type Column struct {
	Name  string
	SQL   string // the MySQL column type
	Arrow arrow.DataType
	Kind  Kind
	Scale int // DECIMAL's
}

var utc = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}

// Columns are the table's columns, in order; id is the primary key and
// never NULL.
var Columns = []Column{
	{"id", "BIGINT NOT NULL PRIMARY KEY", arrow.PrimitiveTypes.Int64, Int, 0},
	{"i8", "TINYINT", arrow.PrimitiveTypes.Int8, Int, 0},
	{"u8", "TINYINT UNSIGNED", arrow.PrimitiveTypes.Uint8, Uint, 0},
	{"i16", "SMALLINT", arrow.PrimitiveTypes.Int16, Int, 0},
	{"u16", "SMALLINT UNSIGNED", arrow.PrimitiveTypes.Uint16, Uint, 0},
	{"i32", "INT", arrow.PrimitiveTypes.Int32, Int, 0},
	{"u32", "INT UNSIGNED", arrow.PrimitiveTypes.Uint32, Uint, 0},
	{"i64", "BIGINT", arrow.PrimitiveTypes.Int64, Int, 0},
	{"u64", "BIGINT UNSIGNED", arrow.PrimitiveTypes.Uint64, Uint, 0},
	// Stored as INT32, INT64 and FIXED_LEN_BYTE_ARRAY (WithStoreDecimalAsInteger).
	{"d9", "DECIMAL(9,2)", &arrow.Decimal128Type{Precision: 9, Scale: 2}, Decimal, 2},
	{"d18", "DECIMAL(18,4)", &arrow.Decimal128Type{Precision: 18, Scale: 4}, Decimal, 4},
	{"d30", "DECIMAL(30,6)", &arrow.Decimal128Type{Precision: 30, Scale: 6}, Decimal, 6},
	{"dt", "DATE", arrow.FixedWidthTypes.Date32, Date, 0},
	{"ts_ms", "DATETIME(3)", utc, Instant, 0},
	{"ts_us", "DATETIME(6)", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Instant, 0},
	{"ts_ns", "DATETIME(6)", &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}, Instant, 0},
	{"wall_ms", "DATETIME(3)", &arrow.TimestampType{Unit: arrow.Millisecond}, Wall, 0},
	{"wall_us", "DATETIME(6)", &arrow.TimestampType{Unit: arrow.Microsecond}, Wall, 0},
	{"wall_ns", "DATETIME(6)", &arrow.TimestampType{Unit: arrow.Nanosecond}, Wall, 0},
	{"tstamp", "TIMESTAMP(6) NULL", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Instant, 0},
	{"t_ms", "TIME(3)", arrow.FixedWidthTypes.Time32ms, TimeOfDay, 0},
	{"t_us", "TIME(6)", arrow.FixedWidthTypes.Time64us, TimeOfDay, 0},
	{"t_ns", "TIME(6)", arrow.FixedWidthTypes.Time64ns, TimeOfDay, 0},
	{"s", "VARCHAR(200)", arrow.BinaryTypes.String, Text, 0},
	{"b", "VARBINARY(64)", arrow.BinaryTypes.Binary, Bytes, 0},
	{"flag", "BOOLEAN", arrow.FixedWidthTypes.Boolean, Bool, 0},
	{"f64", "DOUBLE", arrow.PrimitiveTypes.Float64, Double, 0},
}

// CreateTable is the CREATE TABLE of the generated table.
func CreateTable(name string) string {
	defs := make([]string, len(Columns))
	for i, c := range Columns {
		defs[i] = "`" + c.Name + "` " + c.SQL
	}
	return fmt.Sprintf("CREATE TABLE `%s` (\n  %s\n)", name, strings.Join(defs, ",\n  "))
}

// Options say what to write.
type Options struct {
	FirstID     int64  // id of the first row
	Rows        int    // rows to write
	RowGroup    int64  // rows per row group
	Compression string // snappy, gzip, zstd or none
	Seed        uint64
	// Int96 writes timestamps as legacy INT96 (Impala, Hive, Spark).
	Int96 bool
}

// Row returns the values of row id (nil: NULL). Every nullable column is
// NULL in one row of seven, at a different place for each column.
func Row(seed uint64, id int64) []any {
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	out := make([]any, len(Columns))
	base := time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC)
	// Within TIMESTAMP's range, which the wall clocks share.
	span := time.Date(2037, 12, 31, 0, 0, 0, 0, time.UTC).Sub(base)
	for i, c := range Columns {
		if i > 0 && (id+int64(i))%7 == 0 {
			continue // NULL
		}
		var v any
		switch c.Name {
		case "id":
			v = id
		case "i8":
			v = rng.Int64N(256) - 128
		case "u8":
			v = rng.Uint64N(256)
		case "i16":
			v = rng.Int64N(1<<16) - 1<<15
		case "u16":
			v = rng.Uint64N(1 << 16)
		case "i32":
			v = rng.Int64N(1<<32) - 1<<31
		case "u32":
			v = rng.Uint64N(1 << 32)
		case "i64":
			v = int64(rng.Uint64())
		case "u64":
			v = rng.Uint64()
		case "d9", "d18", "d30":
			digits := map[string]int{"d9": 9, "d18": 18, "d30": 30}[c.Name]
			var sb strings.Builder
			for range rng.IntN(digits) + 1 {
				sb.WriteByte(byte('0' + rng.IntN(10)))
			}
			n, _ := new(big.Int).SetString(sb.String(), 10)
			if rng.IntN(2) == 0 {
				n.Neg(n)
			}
			v = decimalText(n, c.Scale)
		case "dt":
			v = base.AddDate(0, 0, rng.IntN(24000))
		case "ts_ms", "wall_ms":
			v = base.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Millisecond)
		case "ts_us", "wall_us", "tstamp":
			v = base.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Microsecond)
		case "ts_ns", "wall_ns":
			v = base.Add(time.Duration(rng.Int64N(int64(span))))
		case "t_ms":
			v = time.Duration(rng.Int64N(int64(24 * time.Hour))).Truncate(time.Millisecond)
		case "t_us":
			v = time.Duration(rng.Int64N(int64(24 * time.Hour))).Truncate(time.Microsecond)
		case "t_ns":
			v = time.Duration(rng.Int64N(int64(24 * time.Hour)))
		case "s":
			words := []string{"plain", "tab\there", "new\nline", `back\slash`, `"quoted"`, "it's", "ünïcödé", "中文", "", `\N`, "a,b;c"}
			v = fmt.Sprintf("%s %d %s", words[rng.IntN(len(words))], id, words[rng.IntN(len(words))])
		case "b":
			b := make([]byte, rng.IntN(40))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			v = b
		case "flag":
			v = rng.IntN(2) == 0
		case "f64":
			v = (rng.Float64() - 0.5) * 1e6
		}
		out[i] = v
	}
	return out
}

func decimalText(n *big.Int, scale int) string {
	s := new(big.Int).Abs(n).String()
	for len(s) <= scale {
		s = "0" + s
	}
	sign := ""
	if n.Sign() < 0 {
		sign = "-"
	}
	return sign + s[:len(s)-scale] + "." + s[len(s)-scale:]
}

// Write writes rows FirstID .. FirstID+Rows-1 to path.
func Write(path string, o Options) error {
	return WriteColumns(path, o, Columns, nil)
}

// WriteColumns writes the given columns (a subset, in any order, or
// columns of other types) with values from Row; extra fills in a column
// Row does not know (nil: NULL).
func WriteColumns(path string, o Options, cols []Column, extra func(c Column, id int64) any) error {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.Name, Type: c.Arrow, Nullable: c.Name != "id"}
	}
	schema := arrow.NewSchema(fields, nil)
	codec := map[string]compress.Compression{"snappy": compress.Codecs.Snappy, "gzip": compress.Codecs.Gzip,
		"zstd": compress.Codecs.Zstd, "none": compress.Codecs.Uncompressed, "": compress.Codecs.Uncompressed}[o.Compression]
	props := parquet.NewWriterProperties(parquet.WithCompression(codec), parquet.WithMaxRowGroupLength(max(o.RowGroup, 1)),
		parquet.WithStoreDecimalAsInteger(true), parquet.WithVersion(parquet.V2_LATEST))
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	w, err := pqarrow.NewFileWriter(schema, out, props, pqarrow.NewArrowWriterProperties(pqarrow.WithDeprecatedInt96Timestamps(o.Int96)))
	if err != nil {
		return err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	index := map[string]int{}
	for i, c := range Columns {
		index[c.Name] = i
	}
	for id := o.FirstID; id < o.FirstID+int64(o.Rows); id++ {
		row := Row(o.Seed, id)
		for i, c := range cols {
			var v any
			if k, ok := index[c.Name]; ok && Columns[k].Arrow == c.Arrow {
				v = row[k]
			} else if extra != nil {
				v = extra(c, id)
			}
			if err := appendValue(b.Field(i), c, v); err != nil {
				return fmt.Errorf("column %s: %w", c.Name, err)
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		return err
	}
	return w.Close()
}

func appendValue(b array.Builder, c Column, v any) error {
	if v == nil {
		b.AppendNull()
		return nil
	}
	switch b := b.(type) {
	case *array.Int8Builder:
		b.Append(int8(v.(int64)))
	case *array.Int16Builder:
		b.Append(int16(v.(int64)))
	case *array.Int32Builder:
		b.Append(int32(v.(int64)))
	case *array.Int64Builder:
		b.Append(v.(int64))
	case *array.Uint8Builder:
		b.Append(uint8(v.(uint64)))
	case *array.Uint16Builder:
		b.Append(uint16(v.(uint64)))
	case *array.Uint32Builder:
		b.Append(uint32(v.(uint64)))
	case *array.Uint64Builder:
		b.Append(v.(uint64))
	case *array.Decimal128Builder:
		n, ok := new(big.Int).SetString(strings.Replace(v.(string), ".", "", 1), 10)
		if !ok {
			return fmt.Errorf("decimal %q", v)
		}
		b.Append(decimal128.FromBigInt(n))
	case *array.Date32Builder:
		b.Append(arrow.Date32FromTime(v.(time.Time)))
	case *array.TimestampBuilder:
		t := v.(time.Time)
		switch c.Arrow.(*arrow.TimestampType).Unit {
		case arrow.Millisecond:
			b.Append(arrow.Timestamp(t.UnixMilli()))
		case arrow.Microsecond:
			b.Append(arrow.Timestamp(t.UnixMicro()))
		default:
			b.Append(arrow.Timestamp(t.UnixNano()))
		}
	case *array.Time32Builder:
		b.Append(arrow.Time32(v.(time.Duration) / time.Millisecond))
	case *array.Time64Builder:
		d := v.(time.Duration)
		if c.Arrow.(*arrow.Time64Type).Unit == arrow.Microsecond {
			b.Append(arrow.Time64(d / time.Microsecond))
		} else {
			b.Append(arrow.Time64(d))
		}
	case *array.StringBuilder:
		b.Append(v.(string))
	case *array.BinaryBuilder:
		b.Append(v.([]byte))
	case *array.BooleanBuilder:
		b.Append(v.(bool))
	case *array.Float64Builder:
		b.Append(v.(float64))
	case *array.ListBuilder:
		b.Append(true)
		b.ValueBuilder().(*array.Int32Builder).Append(int32(v.(int64)))
	default:
		return fmt.Errorf("no builder for %T", b)
	}
	return nil
}

// SQLValue is v as a parameter for the SQL driver: the way a test loads
// the same rows without storm.
func SQLValue(c Column, v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case time.Time:
		if c.Kind == Date {
			return x.Format("2006-01-02")
		}
		return x.UTC().Format("2006-01-02 15:04:05.000000")
	case time.Duration:
		return FormatTime(x)
	case bool:
		if x {
			return 1
		}
		return 0
	}
	return v
}

// FormatTime is a time of day as HH:MM:SS.ffffff (nanoseconds dropped).
func FormatTime(d time.Duration) string {
	us := int64(d / time.Microsecond)
	return fmt.Sprintf("%02d:%02d:%02d.%06d", us/3_600_000_000, us/60_000_000%60, us/1_000_000%60, us%1_000_000)
}

// StringWriter writes rows of text columns (BYTE_ARRAY, STRING) to a
// Parquet file, a row group every rowGroup rows: for a table whose rows
// exist as text already (gendump's), as a bench puts them beside its CSV.
type StringWriter struct {
	w        *pqarrow.FileWriter
	out      *os.File
	b        *array.RecordBuilder
	rows     int
	rowGroup int
}

// NewStringWriter creates path with the given text columns.
func NewStringWriter(path string, cols []string, rowGroup int, compression string) (*StringWriter, error) {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c, Type: arrow.BinaryTypes.String, Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	codec, ok := map[string]compress.Compression{"snappy": compress.Codecs.Snappy, "gzip": compress.Codecs.Gzip,
		"zstd": compress.Codecs.Zstd, "none": compress.Codecs.Uncompressed}[compression]
	if !ok {
		return nil, fmt.Errorf("compression %q: want snappy, gzip, zstd or none", compression)
	}
	out, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(codec), parquet.WithMaxRowGroupLength(int64(max(rowGroup, 1))))
	w, err := pqarrow.NewFileWriter(schema, out, props, pqarrow.NewArrowWriterProperties())
	if err != nil {
		out.Close()
		return nil, err
	}
	return &StringWriter{w: w, out: out, b: array.NewRecordBuilder(memory.DefaultAllocator, schema), rowGroup: max(rowGroup, 1)}, nil
}

// Add adds a row (nil: NULL).
func (s *StringWriter) Add(vals []*string) error {
	for i, v := range vals {
		fb := s.b.Field(i).(*array.StringBuilder)
		if v == nil {
			fb.AppendNull()
		} else {
			fb.Append(*v)
		}
	}
	if s.rows++; s.rows == s.rowGroup {
		return s.flush()
	}
	return nil
}

func (s *StringWriter) flush() error {
	if s.rows == 0 {
		return nil
	}
	rec := s.b.NewRecordBatch()
	defer rec.Release()
	s.rows = 0
	return s.w.Write(rec)
}

// Close writes the last row group and the footer.
func (s *StringWriter) Close() error {
	err := s.flush()
	if cerr := s.w.Close(); err == nil {
		err = cerr
	}
	s.b.Release()
	if cerr := s.out.Close(); err == nil && !errors.Is(cerr, os.ErrClosed) {
		err = cerr
	}
	return err
}
