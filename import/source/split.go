package source

import (
	"bytes"
	"context"
	"io"

	"storm/import/storage"
)

// Split cuts f into chunks of about shardSize bytes. Only uncompressed CSV
// files larger than shardSize and Parquet files (by row groups) are split;
// any other file is one chunk.
//
// Cut k is nominally at k*shardSize and moves forward to the first row start
// at or after it, so a chunk holds the rows starting inside its range and
// each row is in exactly one chunk. Cuts that land on the same row start
// collapse, and a cut that would leave the first chunk holding only the
// header is dropped. With csv.StrictFormat the row start is found by
// seeking (quoted fields hold no terminators, so the next terminator ends a
// row); otherwise the whole file is scanned with the reader's own parser, so
// quoted terminators are never mistaken for row ends. Either way StartLine is
// exact.
func Split(f DataFile, shardSize int64, csv CSVConfig) ([]Chunk, error) {
	fs, err := SplitFile(f, shardSize, csv)
	return fs.Chunks, err
}

// FileSplit is what splitting a file found: its chunks and, for a Parquet
// file, what its footer says, so that the plan checks its columns without
// reading the footer again.
type FileSplit struct {
	Chunks  []Chunk
	Parquet *ParquetFile
}

// SplitFile is Split, returning the Parquet footer it read as well.
func SplitFile(f DataFile, shardSize int64, csv CSVConfig) (FileSplit, error) {
	if f.Format == FormatParquet {
		return splitParquet(f, shardSize)
	}
	chunks, err := splitText(f, shardSize, csv)
	return FileSplit{Chunks: chunks}, err
}

// splitText splits a CSV or SQL file.
func splitText(f DataFile, shardSize int64, csv CSVConfig) ([]Chunk, error) {
	whole := []Chunk{{Path: f.Path, Format: f.Format, Compression: f.Compression, Start: 0, End: -1, StartLine: 1}}
	pin := f.Version()
	whole[0].Size, whole[0].ETag = pin.Size, pin.ETag
	if f.Format != FormatCSV || f.Compression != CompressionNone || shardSize <= 0 || f.Size <= shardSize {
		return whole, nil
	}
	// An S3 object is read as a stream of ranged GETs (scanCuts) or with a
	// ranged GET per cut (strictCuts); either way, as the version listed.
	file, err := storage.Open(context.Background(), f.Path, storage.Version{Size: whole[0].Size, ETag: whole[0].ETag})
	if err != nil {
		return nil, err
	}
	defer file.Close()
	size := file.Size()
	if size <= shardSize {
		return whole, nil
	}
	var cuts []cut
	if csv.StrictFormat {
		cuts, err = strictCuts(file, f.Path, size, shardSize, csv)
	} else {
		cuts, err = scanCuts(file, f.Path, size, shardSize, csv)
	}
	if err != nil {
		return nil, err // a *ParseError or an *fs.PathError: both name the file
	}
	chunks := whole
	for _, c := range cuts {
		chunks[len(chunks)-1].End = c.off
		chunks = append(chunks, Chunk{Path: f.Path, Format: f.Format, Start: c.off, End: -1, StartLine: c.line,
			Size: whole[0].Size, ETag: whole[0].ETag})
	}
	return chunks, nil
}

// cut is a row start where a chunk begins, and its line number.
type cut struct{ off, line int64 }

// scanCuts parses the whole file, discarding the fields, and takes the first
// row start at or after each nominal cut.
func scanCuts(file io.Reader, path string, size, shardSize int64, cfg CSVConfig) ([]cut, error) {
	var p csvParser
	p.init(path, cfg)
	p.s.reset(file, 0)
	p.line = 1
	if cfg.Header {
		if _, err := p.readRecord(true); err != nil {
			return nil, err
		}
	}
	skip := func() (recKind, error) { return p.readRecord(true) }
	if p.singleByteTokens() {
		skip = p.skipRecordFast
	}
	var cuts []cut
	next := (p.s.offset()/shardSize + 1) * shardSize
	for {
		kind, err := skip()
		if err != nil {
			return nil, err
		}
		if kind == recEOF {
			return cuts, nil
		}
		if off := p.s.offset(); off >= next && off < size {
			cuts = append(cuts, cut{off, p.line})
			next = (off/shardSize + 1) * shardSize
		}
	}
}

func (p *csvParser) singleByteTokens() bool {
	return len(p.sep) == 1 && len(p.delim) <= 1 && len(p.term) == 1
}

// skipRecordFast is readRecord(true) for single-byte tokens, folding the
// unquoted fields of a record into one loop instead of a call per field:
// the scan of Split spends its time here. It must find the same record ends
// as readRecord, which the property and fuzz tests check.
func (p *csvParser) skipRecordFast() (recKind, error) {
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
	sep, term := p.sep[0], p.term[0]
	stop := &p.stopUnq
	fieldStart := true
	for {
		if s.pos >= s.n && !s.fill() {
			return recRow, s.failure()
		}
		if fieldStart && len(p.delim) > 0 && s.buf[s.pos] == p.delim[0] {
			end, err := p.skipQuoted()
			if err != nil || end != endSep {
				return recRow, err
			}
			continue
		}
		fieldStart = false
		b := s.buf[s.pos:s.n]
		i := 0
		for i < len(b) && !stop[b[i]] {
			i++
		}
		s.pos += i
		if i == len(b) {
			continue
		}
		switch c := b[i]; {
		case c == sep:
			s.pos++
			p.line += p.sepNL
			fieldStart = true
		case c == term:
			s.pos++
			p.line += p.termNL
			return recRow, nil
		case c == '\r' && p.crlf:
			if s.ensure(2) && s.buf[s.pos+1] == '\n' {
				s.pos += 2
				p.line++
				return recRow, nil
			}
			s.pos++
		case c == '\\' && p.escape:
			if s.ensure(2) {
				if s.buf[s.pos+1] == '\n' {
					p.line++
				}
				s.pos++
			}
			s.pos++
		default:
			s.pos++
			if c == '\n' {
				p.line++
			}
		}
	}
}

// skipQuoted is quoted(true) for a one-byte delimiter. It jumps from one
// delimiter to the next (bytes.IndexByte) instead of looking at every
// byte: a delimiter is escaped when an odd run of backslashes comes right
// before it, since the scan only ever stops where every backslash before
// it has been paired.
func (p *csvParser) skipQuoted() (fieldEnd, error) {
	s := &p.s
	d := p.delim[0]
	if d == '\\' || d == '\n' {
		return p.quoted(true)
	}
	openLine, openOff := p.line, s.offset()
	s.pos++
	for {
		b := s.buf[s.pos:s.n]
		j := bytes.IndexByte(b, d)
		switch {
		case j >= 0 && p.escape && oddBackslashes(b[:j]):
			// An escaped delimiter: data.
			p.line += int64(bytes.Count(b[:j+1], nl))
			s.pos += j + 1
		case j >= 0:
			p.line += int64(bytes.Count(b[:j], nl))
			s.pos += j
			end, doubled, err := p.closeQuote()
			if err != nil || !doubled {
				return end, err
			}
		default:
			// No delimiter in b: pass it, but for a backslash at its end
			// that escapes what comes next.
			k := len(b)
			if p.escape && oddBackslashes(b) {
				k--
			}
			p.line += int64(bytes.Count(b[:k], nl))
			s.pos += k
			if !s.fill() {
				if err := s.failure(); err != nil {
					return 0, err
				}
				return 0, p.errorAt(openLine, openOff, "unclosed quoted field")
			}
		}
	}
}

// oddBackslashes reports whether b ends in an odd run of backslashes.
func oddBackslashes(b []byte) bool {
	n := 0
	for n < len(b) && b[len(b)-1-n] == '\\' {
		n++
	}
	return n%2 == 1
}

// strictCuts finds each cut with a short read after the nominal offset, then
// counts the lines before each cut in one sequential pass.
func strictCuts(file readAtSeeker, path string, size, shardSize int64, cfg CSVConfig) ([]cut, error) {
	var first int64 // the first chunk keeps the header
	if cfg.Header {
		var p csvParser
		p.init(path, cfg)
		p.s.reset(io.NewSectionReader(file, 0, size), 0)
		if _, err := p.readRecord(true); err != nil {
			return nil, err
		}
		first = p.s.offset()
	}
	term := []byte(cfg.Terminator)
	if len(term) == 0 {
		term = nl // a row ends after "\n" whether or not "\r" precedes it
	}
	var cuts []cut
	prev := first
	buf := make([]byte, 64<<10)
	for k := prev/shardSize + 1; k*shardSize < size; k++ {
		off, err := rowStartAfter(file, k*shardSize, term, buf)
		if err != nil {
			return nil, err
		}
		if off < 0 || off >= size {
			break
		}
		cuts = append(cuts, cut{off: off})
		k = off / shardSize
	}
	return cuts, countLines(file, cuts)
}

// rowStartAfter returns the offset just past the first terminator that ends
// at or after nominal, or -1 if there is none.
func rowStartAfter(file io.ReaderAt, nominal int64, term, buf []byte) (int64, error) {
	at := max(nominal-int64(len(term)), 0)
	keep := 0 // bytes carried over so a terminator split between reads matches
	for {
		n, err := file.ReadAt(buf[keep:], at+int64(keep))
		if err != nil && err != io.EOF {
			return 0, err
		}
		window := buf[:keep+n]
		if i := bytes.Index(window, term); i >= 0 {
			return at + int64(i+len(term)), nil
		}
		if err == io.EOF || n == 0 {
			return -1, nil
		}
		keep = min(len(term)-1, len(window))
		copy(buf, window[len(window)-keep:])
		at += int64(len(window) - keep)
	}
}

// readAtSeeker is a file or an S3 object: cuts are found with short reads
// at offsets, lines counted in one sequential read (one stream of GETs on
// S3, not a GET per buffer).
type readAtSeeker interface {
	io.ReaderAt
	io.ReadSeeker
}

// countLines fills in the line number of each cut by counting newlines
// from the start of the file.
func countLines(file io.ReadSeeker, cuts []cut) error {
	if len(cuts) == 0 {
		return nil
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	var pos int64
	line := int64(1)
	for i := range cuts {
		for pos < cuts[i].off {
			n, err := file.Read(buf[:min(int64(len(buf)), cuts[i].off-pos)])
			line += int64(bytes.Count(buf[:n], nl))
			pos += int64(n)
			if err != nil && (err != io.EOF || pos < cuts[i].off) {
				return err
			}
		}
		cuts[i].line = line
	}
	return nil
}
