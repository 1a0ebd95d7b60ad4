package source

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"storm/import/storage"
)

// OpenChunk opens a reader over the rows of ch.
//
// resumeOffset and resumeLine come from a Row.End and Row.NextLine returned
// earlier for the same chunk; resumeOffset <= ch.Start means "from the
// start" (ch.Start, ch.StartLine).
//
// An uncompressed CSV chunk seeks straight to its start (or resume point),
// reading the header line first when csv.Header is set so that Columns works
// for every chunk. Streams that cannot seek — SQL files, whose rows need the
// INSERT statement that precedes them, and compressed files — are parsed from
// the beginning and the rows ending at or before resumeOffset are dropped;
// they are never split, so their chunk must start at 0. Offsets of a
// compressed file count decompressed bytes.
//
// CSV follows Lightning: a quote opens a quoted field only at its start;
// NULL is csv.Null matched on the raw text of an unquoted field (so `"\N"`
// is the string "N" and, with the default Null, an empty field is ""; Null
// "" makes empty unquoted fields NULL); empty lines hold no row; a Separator
// of "" means ",". The reader does not check the number of fields.
func OpenChunk(ch Chunk, csv CSVConfig, resumeOffset, resumeLine int64) (Reader, error) {
	if ch.Start < 0 {
		return nil, fmt.Errorf("%s: negative chunk start %d", ch.Path, ch.Start)
	}
	if ch.StartLine < 1 {
		ch.StartLine = 1
	}
	if resumeLine < 1 {
		resumeLine = 1
	}
	if ch.Header != nil {
		csv.Header = *ch.Header
	}
	switch ch.Format {
	case FormatCSV:
		if ch.Compression != CompressionNone && ch.Start != 0 {
			return nil, fmt.Errorf("%s: a compressed file cannot be read from offset %d", ch.Path, ch.Start)
		}
		return openCSV(ch, csv, resumeOffset, resumeLine)
	case FormatParquet:
		return openParquet(ch, max(ch.Start, resumeOffset))
	case FormatSQL:
		if ch.Start != 0 {
			return nil, fmt.Errorf("%s: an SQL file cannot be read from offset %d", ch.Path, ch.Start)
		}
		return openSQL(ch, resumeOffset)
	default:
		return nil, fmt.Errorf("%s: unknown data format %q", ch.Path, ch.Format)
	}
}

// openStream opens path (a file or an s3:// object) and decompresses it as
// c says. The returned reader is the file itself when uncompressed, so
// callers may seek it.
func openStream(path string, c Compression) (io.Reader, func() error, error) {
	return openVersion(path, storage.Version{}, c)
}

// openChunkStream is openStream for a chunk: an object that is no longer
// the one planned (its ETag or size differs) is refused, naming its key.
func openChunkStream(ch Chunk) (io.Reader, func() error, error) {
	return openVersion(ch.Path, storage.Version{Size: ch.Size, ETag: ch.ETag}, ch.Compression)
}

func openVersion(path string, want storage.Version, c Compression) (io.Reader, func() error, error) {
	// The readers have no context: a worker that stops closes its reader,
	// which ends any request in flight.
	f, err := storage.Open(context.Background(), path, want)
	if err != nil {
		return nil, nil, err
	}
	switch c {
	case CompressionNone:
		return f, f.Close, nil
	case CompressionGzip:
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, nil, corrupt(path, "gzip", err)
		}
		return &decompressed{zr, path, "gzip"}, func() error {
			zr.Close()
			return f.Close()
		}, nil
	case CompressionZstd:
		// The decoder reads an empty input as no frames, so no data; but no
		// dumper writes that, so it is a file cut short.
		if f.Size() == 0 {
			f.Close()
			return nil, nil, corrupt(path, "zstd", io.ErrUnexpectedEOF)
		}
		// One decoder goroutine per reader: readers already run in parallel,
		// and the default spawns several per stream.
		zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, nil, corrupt(path, "zstd", err)
		}
		return &decompressed{zr, path, "zstd"}, func() error {
			zr.Close()
			return f.Close()
		}, nil
	default:
		f.Close()
		return nil, nil, fmt.Errorf("%s: unknown compression %q", path, c)
	}
}

func corrupt(path, kind string, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%s: truncated or corrupt %s data: %w", path, kind, err)
}

// decompressed names the file in decompression errors, which otherwise say
// only "unexpected EOF" or "invalid checksum".
type decompressed struct {
	r          io.Reader
	path, kind string
}

func (d *decompressed) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = corrupt(d.path, d.kind, err)
	}
	return n, err
}
