package source

import (
	"io"
	"sync"

	"github.com/parquet-go/parquet-go/format"
)

// parquet-go reads a column chunk through a 4 KiB buffer, one ReadAt per
// refill; on S3 each ReadAt is a ranged GET, so a row group of 30 columns
// cost about a hundred GETs. pqBuffer sits between parquet-go and a remote
// object and answers those small reads from a few large ones, using the
// column chunk offsets the footer gives:
//
//   - the last pqTailBytes of the object are read at once: the footer and
//     its length, in one GET rather than three;
//   - a row group whose column chunks span at most limit bytes is read
//     whole, with one GET, when the reader first reaches it;
//   - in a bigger one each column chunk is read in windows of
//     limit/columns bytes (at least pqMinWindow), one window per column
//     held at a time.
//
// It holds at most about limit bytes besides the tail (more only with
// more than limit/pqMinWindow columns), and drops a row group's bytes when
// the reader moves to another. A read at least a window long goes straight
// to the object: parquet-go reads a big page into its own buffer, and
// holding a copy of it too would double it.
type pqBuffer struct {
	r     io.ReaderAt
	size  int64
	limit int64

	mu     sync.Mutex
	tail   pqBlock
	groups []pqGroup
	whole  pqBlock   // a whole row group's column chunks
	cols   []pqBlock // per column chunk of group cur, in windows
	cur    int       // the row group whole or cols hold; -1: none
}

// pqReadLimit bounds what a reader of a remote Parquet object holds of
// its row group's compressed bytes (docs/parquet.md says so); pqMinWindow
// is the smallest window of a column chunk. Variables for tests.
var (
	pqReadLimit int64 = 8 << 20
	pqMinWindow int64 = 64 << 10
)

const (
	// pqTailBytes is read at once from the end of a remote object: the
	// footer of a file of tens of row groups of tens of columns fits.
	pqTailBytes = 64 << 10
)

type pqBlock struct {
	off  int64
	data []byte
}

func (b pqBlock) has(off int64) bool { return off >= b.off && off < b.off+int64(len(b.data)) }

// pqGroup is the byte range of a row group's column chunks, and each one's.
type pqGroup struct {
	start, end int64
	chunks     [][2]int64
}

func newPQBuffer(r io.ReaderAt, size, limit int64) *pqBuffer {
	return &pqBuffer{r: r, size: size, limit: limit, cur: -1}
}

// setLayout gives the buffer the column chunks of each row group, from the
// footer. Offsets outside the object are clamped to it: a corrupt footer
// must not make the buffer read, or hold, more than the object.
func (b *pqBuffer) setLayout(md *format.FileMetaData) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.groups = b.groups[:0]
	for _, rg := range md.RowGroups {
		g := pqGroup{start: b.size, end: 0}
		for _, c := range rg.Columns {
			from := c.MetaData.DataPageOffset
			if d := c.MetaData.DictionaryPageOffset; d > 0 && d < from {
				from = d
			}
			from = min(max(from, 0), b.size)
			to := min(max(from+max(c.MetaData.TotalCompressedSize, 0), from), b.size)
			g.chunks = append(g.chunks, [2]int64{from, to})
			g.start, g.end = min(g.start, from), max(g.end, to)
		}
		if g.end < g.start {
			g.start, g.end = 0, 0
		}
		b.groups = append(b.groups, g)
	}
}

func (b *pqBuffer) ReadAt(p []byte, off int64) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for len(p) > 0 {
		if off >= b.size {
			return n, io.EOF
		}
		k, err := b.readSome(p, off)
		n += k
		if err != nil {
			return n, err
		}
		p, off = p[k:], off+int64(k)
	}
	return n, nil
}

// readSome reads the start of p, from a block it holds or loads, or from
// the object.
func (b *pqBuffer) readSome(p []byte, off int64) (int, error) {
	tailStart := max(b.size-pqTailBytes, 0)
	if off >= tailStart {
		if b.tail.data == nil {
			data, err := b.load(tailStart, b.size)
			if err != nil {
				return 0, err
			}
			b.tail = pqBlock{off: tailStart, data: data}
		}
		return b.tail.copy(p, off), nil
	}
	// Never past the tail: it is held already.
	p = p[:min(int64(len(p)), tailStart-off)]
	g, c := b.find(off)
	if g < 0 {
		return b.direct(p, off)
	}
	if g != b.cur {
		b.whole, b.cols, b.cur = pqBlock{}, nil, g
	}
	grp := b.groups[g]
	if grp.end-grp.start <= b.limit {
		if b.whole.data == nil {
			data, err := b.load(grp.start, grp.end)
			if err != nil {
				return 0, err
			}
			b.whole = pqBlock{off: grp.start, data: data}
		}
		if b.whole.has(off) {
			return b.whole.copy(p, off), nil
		}
		return b.direct(p, off)
	}
	if b.cols == nil {
		b.cols = make([]pqBlock, len(grp.chunks))
	}
	if c < 0 {
		return b.direct(p, off)
	}
	if b.cols[c].has(off) {
		return b.cols[c].copy(p, off), nil
	}
	window := max(b.limit/int64(len(grp.chunks)), pqMinWindow)
	end := grp.chunks[c][1]
	if int64(len(p)) >= window || int64(len(p)) >= end-off {
		b.cols[c] = pqBlock{}
		return b.direct(p[:min(int64(len(p)), end-off)], off)
	}
	data, err := b.load(off, min(off+window, end))
	if err != nil {
		return 0, err
	}
	b.cols[c] = pqBlock{off: off, data: data}
	return b.cols[c].copy(p, off), nil
}

// find returns the row group and the column chunk that hold off, or -1.
func (b *pqBuffer) find(off int64) (int, int) {
	// The reader moves forward: the current group first.
	if b.cur >= 0 && b.cur < len(b.groups) {
		if c := b.groups[b.cur].chunk(off); c >= 0 {
			return b.cur, c
		}
	}
	for g := range b.groups {
		if c := b.groups[g].chunk(off); c >= 0 {
			return g, c
		}
	}
	return -1, -1
}

func (g pqGroup) chunk(off int64) int {
	if off < g.start || off >= g.end {
		return -1
	}
	for i, c := range g.chunks {
		if off >= c[0] && off < c[1] {
			return i
		}
	}
	return -1
}

func (b pqBlock) copy(p []byte, off int64) int { return copy(p, b.data[off-b.off:]) }

// load reads [from, to) of the object with one ReadAt.
func (b *pqBuffer) load(from, to int64) ([]byte, error) {
	data := make([]byte, to-from)
	n, err := b.r.ReadAt(data, from)
	if n == len(data) {
		return data, nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

func (b *pqBuffer) direct(p []byte, off int64) (int, error) {
	n, err := b.r.ReadAt(p, off)
	if n == len(p) {
		return n, nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
