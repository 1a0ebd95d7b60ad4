// Package source finds the files of a mydumper/Dumpling dump, splits them into
// shards and reads their rows (CSV and SQL INSERT statements).
package source

import "fmt"

// Format is the encoding of a data file.
type Format string

const (
	FormatCSV Format = "csv"
	FormatSQL Format = "sql"
	// FormatParquet is an Apache Parquet file: its chunks count rows, not
	// bytes (parquet.go).
	FormatParquet Format = "parquet"
)

// Compression of a data file. Compressed files are never split.
type Compression string

const (
	CompressionNone Compression = ""
	CompressionGzip Compression = "gzip"
	CompressionZstd Compression = "zstd"
)

// CSVConfig mirrors TiDB Lightning's [mydumper.csv] section.
type CSVConfig struct {
	Separator  string `json:"separator" mapstructure:"separator"`   // field separator, default ","
	Delimiter  string `json:"delimiter" mapstructure:"delimiter"`   // quote character, default `"`; empty: no quoting
	Terminator string `json:"terminator" mapstructure:"terminator"` // line terminator; empty: "\n" or "\r\n"
	Header     bool   `json:"header" mapstructure:"header"`         // the first line holds column names
	// HeaderAuto (source.csv.header = "auto") has the plan look at each
	// file's first line (DetectHeader) and record what it found in the
	// file's chunks (Chunk.Header); Header is then false.
	HeaderAuto      bool   `json:"header-auto,omitempty" mapstructure:"-"`
	Null            string `json:"null" mapstructure:"null"`                         // the text that means NULL, default `\N`
	BackslashEscape bool   `json:"backslash-escape" mapstructure:"backslash-escape"` // `\` escapes the next character
	// StrictFormat promises that no quoted field holds a line terminator, so
	// large files can be split by seeking instead of scanning them whole.
	StrictFormat bool `json:"strict-format" mapstructure:"strict-format"`
}

// DefaultCSV is the mydumper default dialect.
func DefaultCSV() CSVConfig {
	return CSVConfig{Separator: ",", Delimiter: `"`, Header: true, Null: `\N`, BackslashEscape: true}
}

// Value is one field. Data holds the decoded bytes: quotes and escapes
// removed, a hex literal turned into its bytes, a number as its text.
type Value struct {
	Null bool
	Data []byte
	// Plain promises that Data holds none of the bytes a backslash-escaped
	// text (LOAD DATA's) must escape: backslash, tab, newline, carriage
	// return, NUL and ^Z, so a writer may copy it as it is. false means
	// unknown: the CSV reader sets it, the SQL reader does not.
	Plain bool
}

// Row is one record of a data file.
type Row struct {
	Values []Value
	// TSV, from a reader told to EncodeTSV, is the row already encoded as
	// LOAD DATA text (as AppendTSV writes it), and Values is nil; Count is
	// its number of fields.
	TSV   []byte
	Count int
	Line  int64 // 1-based line of the file where the row starts
	End   int64 // byte offset in the (uncompressed) file just past the row: a resume point
	// NextLine is the line number at End, so a reader resumed at End counts on.
	NextLine int64
}

// Len is the row's number of fields.
func (r Row) Len() int {
	if r.TSV != nil {
		return r.Count
	}
	return len(r.Values)
}

// AppendTSV appends the row to dst as LOAD DATA text (FIELDS TERMINATED
// BY '\t' ESCAPED BY '\\', NULL as \N), without a line end: the one
// definition of the text storm sends, which Row.TSV holds already encoded.
func (r Row) AppendTSV(dst []byte) []byte {
	if r.TSV != nil {
		return append(dst, r.TSV...)
	}
	for i, v := range r.Values {
		if i > 0 {
			dst = append(dst, '\t')
		}
		switch {
		case v.Null:
			dst = append(dst, '\\', 'N')
		case v.Plain:
			dst = append(dst, v.Data...)
		default:
			dst = appendTSV(dst, v.Data)
		}
	}
	return dst
}

// TSVEncoder is a Reader that can hand out its rows encoded as LOAD DATA
// text (Row.TSV) instead of decoded values: one pass over the bytes and
// no second copy, for a caller that needs no value itself (no digest to
// compute). Call it before the first Next.
type TSVEncoder interface {
	EncodeTSV()
}

// Reader reads the rows of one chunk.
type Reader interface {
	// Columns names the columns of the last row returned (a CSV header or an
	// INSERT column list), or nil when rows are positional.
	Columns() []string
	// Next returns the next row, or io.EOF after the last row of the chunk.
	// The row and its slices are valid only until the next call.
	Next() (Row, error)
	Close() error
}

// Chunk is the byte range of a data file that one shard reads. Start is the
// offset of the first row of the chunk; End is the offset just past its last
// row (-1: to the end of the file). Boundaries always fall on row starts, so
// every row belongs to exactly one chunk.
type Chunk struct {
	Path        string      `json:"path"`
	Format      Format      `json:"format"`
	Compression Compression `json:"compression,omitempty"`
	Start       int64       `json:"start"`
	End         int64       `json:"end"`
	StartLine   int64       `json:"start_line"` // line number at Start (1 for the file start)
	// Header, when set, says whether the CSV file's first line is a
	// header, in place of CSVConfig.Header: the plan's finding under
	// source.csv.header = "auto".
	Header *bool `json:"header,omitempty"`
	// DataBytes is a Parquet chunk's compressed bytes, for progress: its
	// Start and End count rows.
	DataBytes int64 `json:"data_bytes,omitempty"`
	// TimeZone is the target's time_zone, in which a Parquet chunk's
	// instants (timestamps adjusted to UTC) are written.
	TimeZone string `json:"time_zone,omitempty"`
	// Size and ETag pin an S3 object as planned: a shard whose object
	// changed since fails rather than load a mix. Unset for local files.
	Size int64  `json:"size,omitempty"`
	ETag string `json:"etag,omitempty"`
}

// ParseError says which row of which file could not be read, and why.
type ParseError struct {
	File string
	Line int64 // where the record (or the value) that could not be read begins
	// Stopped is the line where the parser gave up, when it knows it: an
	// unclosed quote is found at the end of the input, not where it opens.
	Stopped int64
	Offset  int64
	Reason  string
}

func (e *ParseError) Error() string {
	if e.Stopped > e.Line {
		return fmt.Sprintf("%s:%d: %s (it begins on line %d; the parser stopped on line %d, byte offset %d)",
			e.File, e.Line, e.Reason, e.Line, e.Stopped, e.Offset)
	}
	return fmt.Sprintf("%s:%d: %s (byte offset %d)", e.File, e.Line, e.Reason, e.Offset)
}
