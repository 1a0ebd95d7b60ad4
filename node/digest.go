package node

import (
	"context"
	"fmt"
	"io"
	"strings"

	"storm/import/checksum"
	"storm/import/source"
	"storm/meta"
)

// mixedColumns marks a shard whose source column set changed midway: its
// table's digest can't be compared.
const mixedColumns = "*mixed*"

// rowDigester hashes source rows the way the verify phase hashes the
// target's rows (the server in SQL, or storm on the rows it reads back):
// canonically by the target column's type, over the source's columns in the
// table's order.
type rowDigester struct {
	cols   []string // digest columns, in table order
	perm   []int    // source field of each digest column
	hasher *checksum.RowHasher
	fields []checksum.Field
}

// digestColumns caches a table's column types for hashing.
func (n *Node) digestColumns(ctx context.Context, db, table string) ([]checksum.Column, error) {
	n.colMu.Lock()
	defer n.colMu.Unlock()
	key := db + "." + table
	if c, ok := n.dcols[key]; ok {
		return c, nil
	}
	rows, err := n.target.DB().QueryContext(ctx, checksum.ColumnsQuery, db, table)
	if err != nil {
		return nil, fmt.Errorf("column types of %s: %w", key, err)
	}
	defer rows.Close()
	c, err := checksum.ScanColumns(rows)
	if err != nil {
		return nil, fmt.Errorf("column types of %s: %w", key, err)
	}
	n.dcols[key] = c
	return c, nil
}

// newDigester maps the source's columns (nil: positional, every table
// column) onto the table's.
func (n *Node) newDigester(ctx context.Context, db, table string, srcCols []string) (*rowDigester, error) {
	tcols, err := n.digestColumns(ctx, db, table)
	if err != nil {
		return nil, err
	}
	return newRowDigester(n.rowHash, tcols, srcCols), nil
}

// newRowDigester maps the source's columns (nil: positional) onto the
// table's columns tcols, for row hash rh.
func newRowDigester(rh checksum.RowHash, tcols []checksum.Column, srcCols []string) *rowDigester {
	d := &rowDigester{}
	var cols []checksum.Column
	for i, c := range tcols {
		src := i
		if srcCols != nil {
			src = -1
			for j, s := range srcCols {
				if strings.EqualFold(s, c.Name) {
					src = j
					break
				}
			}
			if src < 0 {
				continue
			}
		}
		cols = append(cols, c)
		d.cols = append(d.cols, c.Name)
		d.perm = append(d.perm, src)
	}
	d.hasher = checksum.NewRowHasher(rh, cols)
	d.fields = make([]checksum.Field, len(cols))
	return d
}

// hash is the row's canonical hash. A value that can't be normalised for
// its column is hashed raw: if the target took it anyway, verify reports
// the table rather than the import guessing.
func (d *rowDigester) hash(vals []source.Value) uint64 {
	for i, p := range d.perm {
		if p >= len(vals) {
			return d.hasher.HashRaw(vals)
		}
		d.fields[i] = checksum.Field{Null: vals[p].Null, Data: vals[p].Data}
	}
	h, err := d.hasher.Hash(d.fields)
	if err != nil {
		return d.hasher.HashRaw(vals)
	}
	return h
}

// peekColumns learns a shard's digest columns without loading it, for a
// shard found already finished by a previous owner. nil: no rows.
func (n *Node) peekColumns(ctx context.Context, s meta.Shard) ([]string, error) {
	r, err := source.OpenChunk(s.Chunk, n.spec.Source.CSV, 0, 0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if _, err := r.Next(); err == io.EOF {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	d, err := n.newDigester(ctx, s.DB, s.Table, r.Columns())
	if err != nil {
		return nil, err
	}
	return d.cols, nil
}
