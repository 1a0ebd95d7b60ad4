// Package checksum computes order-independent digests of rows: a count plus
// the XOR of row hashes (rowhash.go), so shard digests merge in any order.
package checksum

import (
	"fmt"
	"strconv"
)

// Digest of a multiset of rows.
type Digest struct {
	Count int64
	XOR   uint64
}

// Add folds one row hash in.
func (d *Digest) Add(h uint64) {
	d.Count++
	d.XOR ^= h
}

// Merge folds another digest in; order does not matter.
func (d *Digest) Merge(o Digest) {
	d.Count += o.Count
	d.XOR ^= o.XOR
}

// Hex renders the XOR part for JSON records (etcdctl users read it; JSON
// numbers lose 64-bit precision).
func (d Digest) Hex() string { return fmt.Sprintf("%016x", d.XOR) }

// ParseHex reads what Hex wrote.
func ParseHex(s string) (uint64, error) { return strconv.ParseUint(s, 16, 64) }
