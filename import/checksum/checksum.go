// Package checksum computes order-independent digests of rows: a count plus
// the XOR of 64-bit row hashes, so shard digests merge in any order.
package checksum

import (
	"fmt"
	"strconv"

	"github.com/cespare/xxhash/v2"

	"storm/import/source"
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

// RawRow hashes a row's fields as read from the source, unnormalised: NULL is
// distinct from every string, and field boundaries are unambiguous.
func RawRow(h *xxhash.Digest, vals []source.Value) uint64 {
	h.Reset()
	var hdr [9]byte
	for _, v := range vals {
		if v.Null {
			hdr[0] = 0
			_, _ = h.Write(hdr[:1])
			continue
		}
		hdr[0] = 1
		n := uint64(len(v.Data))
		for i := 0; i < 8; i++ {
			hdr[1+i] = byte(n >> (8 * i))
		}
		_, _ = h.Write(hdr[:])
		_, _ = h.Write(v.Data)
	}
	return h.Sum64()
}
