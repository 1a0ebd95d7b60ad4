package source

import (
	"fmt"
	"io"
)

// csvReader reads the rows of one CSV chunk.
type csvReader struct {
	p      csvParser
	end    int64 // stop at a row starting here; -1: read to the end
	cols   []string
	values []Value
	close  func() error
	err    error // sticky, so a caller that goes on reading sees it again
}

func openCSV(ch Chunk, cfg CSVConfig, resumeOffset, resumeLine int64) (Reader, error) {
	in, closeFn, err := openChunkStream(ch)
	if err != nil {
		return nil, err
	}
	r := &csvReader{end: ch.End, close: closeFn}
	r.p.init(ch.Path, cfg)
	if err := r.position(in, ch, cfg.Header, resumeOffset, resumeLine); err != nil {
		closeFn()
		return nil, err
	}
	return r, nil
}

// position reads the header if there is one and moves to the first row to
// return.
func (r *csvReader) position(in io.Reader, ch Chunk, header bool, resumeOffset, resumeLine int64) error {
	p := &r.p
	start, line := ch.Start, ch.StartLine
	if resumeOffset > start {
		start, line = resumeOffset, resumeLine
	}
	// An S3 object asks for no more than the chunk in one GET (hinted
	// once reading starts where the chunk's rows are).
	hint := func() {
		if h, ok := in.(interface{ HintEnd(int64) }); ok && ch.End >= 0 {
			h.HintEnd(ch.End)
		}
	}
	if start == 0 {
		hint()
	}
	p.s.reset(in, 0)
	p.line = 1
	if header {
		kind, err := p.readRecord(false)
		if err != nil {
			return fmt.Errorf("header: %w", err)
		}
		if kind == recRow {
			r.cols = make([]string, len(p.ends))
			from := 0
			for i, e := range p.ends {
				r.cols[i] = string(p.data[from:e])
				from = e
			}
		}
	}
	if start <= p.s.offset() {
		return nil
	}
	if sk, ok := in.(io.Seeker); ok {
		if _, err := sk.Seek(start, io.SeekStart); err != nil {
			return err
		}
		hint()
		p.s.reset(in, start)
		p.line = line
		return nil
	}
	// A compressed stream: parse up to the resume point, which also yields
	// its line number.
	for p.s.offset() < start {
		kind, err := p.readRecord(true)
		if err != nil {
			return err
		}
		if kind == recEOF {
			break
		}
	}
	return nil
}

func (r *csvReader) Columns() []string { return r.cols }

// EncodeTSV makes Next hand out rows as LOAD DATA text (Row.TSV).
func (r *csvReader) EncodeTSV() { r.p.tsv = true }

func (r *csvReader) Next() (Row, error) {
	if r.err != nil {
		return Row{}, r.err
	}
	p := &r.p
	for {
		if r.end >= 0 && p.s.offset() >= r.end {
			return Row{}, io.EOF
		}
		line := p.line
		kind, err := p.readRecord(false)
		if err != nil {
			r.err = err
			return Row{}, err
		}
		switch kind {
		case recEOF:
			return Row{}, io.EOF
		case recBlank:
			continue
		}
		if p.tsv {
			return Row{TSV: p.data, Count: len(p.ends), Line: line, End: p.s.offset(), NextLine: p.line}, nil
		}
		r.values = fillValues(r.values, p.data, p.ends, p.nulls, p.plain)
		return Row{Values: r.values, Line: line, End: p.s.offset(), NextLine: p.line}, nil
	}
}

func (r *csvReader) Close() error {
	if r.close == nil {
		return nil
	}
	err := r.close()
	r.close = nil
	return err
}
