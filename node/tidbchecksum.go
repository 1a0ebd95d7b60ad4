package node

import (
	"context"
	"time"

	"storm/meta"
)

// adminChecksum runs TiDB's ADMIN CHECKSUM TABLE for the barrier. storm
// writes rows over SQL and never sees TiKV's KV encoding, so it can't
// compute the value to compare with (TiDB Lightning's local backend can);
// the digest compares the rows, and this records what TiKV holds, for a
// later check or another cluster. A failure is noted, not fatal: the digest
// already decided.
func (n *Node) adminChecksum(ctx context.Context, db, table string) *meta.AdminChecksum {
	start := time.Now()
	var out meta.AdminChecksum
	var dbName, tableName string
	q := "ADMIN CHECKSUM TABLE " + quoteIdent(db) + "." + quoteIdent(table)
	err := n.target.DB().QueryRowContext(ctx, q).Scan(&dbName, &tableName, &out.CRC64XOR, &out.TotalKVs, &out.TotalBytes)
	out.Seconds = time.Since(start).Seconds()
	if err != nil {
		n.log.Warn("ADMIN CHECKSUM TABLE failed", "table", db+"."+table, "err", err)
		out.Error = err.Error()
	}
	return &out
}
