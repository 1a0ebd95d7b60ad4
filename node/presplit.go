package node

// Pre-split (tidb.pre-split = "auto"): an empty TiDB table is one Region,
// and every writer would append to it on one TiKV store until PD splits and
// moves it, long after the import began. The plan knows where each shard
// begins, so it splits the table there before any shard can be claimed:
//
//   - a clustered key (an integer handle or a common handle): at the first
//     row's key of each shard (SPLIT TABLE ... BY), read from the source;
//   - rows whose key is sharded (SHARD_ROW_ID_BITS on _tidb_rowid, or
//     AUTO_RANDOM): evenly over the key range, one Region per shard value
//     (SPLIT TABLE ... BETWEEN ... REGIONS), as TiDB's docs advise;
//   - _tidb_rowid without shard bits: not at all, since TiDB hands out row
//     ids in order whoever writes, and every write lands at the end anyway.
//
// SPLIT TABLE scatters the new Regions and, with
// tidb_wait_split_region_finish, waits for the scatter up to
// tidb_wait_split_region_timeout. A split that fails is a warning in the
// table's record: the import is as correct without it, only slower.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/election"
	"storm/import/sink"
	"storm/import/source"
	"storm/meta"
)

const (
	// preSplitWait bounds the split and scatter of one table (TiDB's own
	// default wait is five minutes).
	preSplitWait = 60 * time.Second
	// maxSplitRegions caps the Regions of an even split and the keys of a
	// split at shard starts: a statement, not a storm of them.
	maxSplitRegions = 4096
	// maxRowIDRange is the top of a sharded _tidb_rowid's or a signed
	// AUTO_RANDOM column's range: the shard bits sit under the sign bit.
	maxRowIDRange = "9223372036854775807"
)

// preSplitOn says whether the job pre-splits this table: a TiDB target, not
// switched off, and a table the plan found empty and no plan has split yet.
func (n *Node) preSplitOn(pt meta.PlanTable) bool {
	return n.target.IsTiDB() && n.spec.TiDB.PreSplit != "off" && pt.InitialRows == 0 && pt.PreSplit == nil
}

// preSplit splits the table's Regions as planPreSplit says and records what
// it did in the table's record. Only losing the leadership is an error.
func (n *Node) preSplit(ctx context.Context, l *election.Leader, pt *meta.PlanTable, chunks []source.Chunk) error {
	ps, err := planPreSplit(ctx, n.target, pt.DB, pt.Table, chunks, n.spec.Source.CSV)
	if err != nil {
		ps.Warning = err.Error()
	} else if ps.Method != meta.PreSplitNone {
		if err := runPreSplit(ctx, n.target.DB(), &ps); err != nil {
			ps.Warning = err.Error()
		}
	}
	log := n.log.With("table", pt.DB+"."+pt.Table, "method", ps.Method, "regions_before", ps.RegionsBefore, "regions_after", ps.RegionsAfter)
	switch {
	case ps.Warning != "":
		log.Warn("pre-split failed; importing without it", "err", ps.Warning)
	case ps.Method == meta.PreSplitNone:
		log.Info("not pre-split", "why", ps.Why)
	default:
		log.Info("pre-split", "keys", len(ps.By), "regions", ps.Regions, "scattered", ps.Scattered)
	}
	pt.PreSplit = &ps
	rec := *pt
	rec.Shards, rec.Bytes = 0, 0 // as prepareTable records it
	key := n.job.Key(meta.KindTables, pt.DB+"."+pt.Table)
	if err := l.Commit(ctx, clientv3.OpPut(key, meta.Encode(rec))); err != nil {
		return fmt.Errorf("record the pre-split of %s.%s: %w", pt.DB, pt.Table, err)
	}
	return nil
}

// planPreSplit decides how to split a table whose shards are chunks, from
// the table's key as TiDB reports it and, for a clustered key, the first
// row of each chunk. It changes nothing.
func planPreSplit(ctx context.Context, t *sink.Target, db, table string, chunks []source.Chunk, csv source.CSVConfig) (meta.PreSplit, error) {
	ps := meta.PreSplit{DB: db, Table: table, Method: meta.PreSplitNone}
	var pkType, sharding sql.NullString
	err := t.DB().QueryRowContext(ctx, `SELECT TIDB_PK_TYPE, TIDB_ROW_ID_SHARDING_INFO FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, db, table).Scan(&pkType, &sharding)
	if err != nil {
		return ps, fmt.Errorf("pre-split %s.%s: read its key: %w", db, table, err)
	}
	if bits, ok := shardBits(sharding.String); ok {
		n := min(1<<min(bits, 20), maxSplitRegions)
		if n < 2 {
			ps.Why = "no shard bits"
			return ps, nil
		}
		ps.Method, ps.Between, ps.Regions = meta.PreSplitEven, "(0) AND ("+maxRowIDRange+")", n
		return ps, nil
	}
	if pkType.String != "CLUSTERED" {
		ps.Why = "rows get _tidb_rowid in order (no SHARD_ROW_ID_BITS): every writer appends at the table's end"
		return ps, nil
	}
	if len(chunks) < 2 {
		ps.Why = "one shard"
		return ps, nil
	}
	keyCols, err := primaryKey(ctx, t.DB(), db, table)
	if err != nil {
		return ps, fmt.Errorf("pre-split %s.%s: %w", db, table, err)
	}
	cols, err := t.TableColumns(ctx, db, table)
	if err != nil {
		return ps, fmt.Errorf("pre-split %s.%s: %w", db, table, err)
	}
	intKey := len(keyCols) == 1 && isIntType(columnType(cols, keyCols[0]))
	seen := map[string]bool{}
	var points []string
	var ints []*big.Int
	for _, ch := range chunks {
		vals, err := firstKey(ch, csv, cols, keyCols)
		if err != nil {
			return ps, fmt.Errorf("pre-split %s.%s: %w", db, table, err)
		}
		if vals == nil {
			continue // an empty chunk, or a key the row leaves NULL
		}
		lits := make([]string, len(vals))
		for i, v := range vals {
			lits[i] = sqlLiteral(v, isIntType(columnType(cols, keyCols[i])))
		}
		p := "(" + strings.Join(lits, ", ") + ")"
		if seen[p] {
			continue
		}
		seen[p] = true
		points = append(points, p)
		if intKey {
			v, ok := new(big.Int).SetString(string(vals[0]), 10)
			if !ok {
				return ps, fmt.Errorf("pre-split %s.%s: %s: key %q is not an integer", db, table, ch.Path, vals[0])
			}
			ints = append(ints, v)
		}
	}
	// The smallest key splits off nothing but an empty Region below the
	// data: leave it out. For a common handle, whose order is the
	// collation's, that is the first shard's key (dumps are in key order).
	if intKey && len(ints) > 0 {
		lo := 0
		for i, v := range ints {
			if v.Cmp(ints[lo]) < 0 {
				lo = i
			}
		}
		points = slices.Delete(points, lo, lo+1)
	} else if len(points) > 0 {
		points = points[1:]
	}
	if len(points) == 0 {
		ps.Why = "every shard begins at the same key"
		return ps, nil
	}
	if len(points) > maxSplitRegions {
		// Every k-th keeps the split even over the shards.
		k := (len(points) + maxSplitRegions - 1) / maxSplitRegions
		var kept []string
		for i := 0; i < len(points); i += k {
			kept = append(kept, points[i])
		}
		points = kept
	}
	ps.Method, ps.By = meta.PreSplitFirstKeys, points
	return ps, nil
}

// shardBits reads TIDB_ROW_ID_SHARDING_INFO: "SHARD_BITS=4" (_tidb_rowid
// with SHARD_ROW_ID_BITS) or "PK_AUTO_RANDOM_BITS=5".
func shardBits(info string) (int, bool) {
	for _, p := range []string{"SHARD_BITS=", "PK_AUTO_RANDOM_BITS="} {
		if v, ok := strings.CutPrefix(info, p); ok {
			bits, err := strconv.Atoi(v)
			return bits, err == nil
		}
	}
	return 0, false
}

// primaryKey lists the primary key's columns in key order.
func primaryKey(ctx context.Context, db *sql.DB, schema, table string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("read the primary key: %w", err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, errors.New("a clustered table without a primary key")
	}
	return cols, nil
}

func columnType(cols []sink.Column, name string) string {
	for _, c := range cols {
		if strings.EqualFold(c.Name, name) {
			return c.DataType
		}
	}
	return ""
}

func isIntType(t string) bool {
	switch strings.ToLower(t) {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return true
	}
	return false
}

// firstKey reads the key columns of a chunk's first row: by name when the
// file names its columns (a CSV header, an INSERT column list), else by the
// table's column order. nil: no row, or a key column left out or NULL.
func firstKey(ch source.Chunk, csv source.CSVConfig, cols []sink.Column, keyCols []string) ([][]byte, error) {
	r, err := source.OpenChunk(ch, csv, 0, 0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	row, err := r.Next()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := r.Columns()
	if names == nil {
		names = make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.Name
		}
	}
	out := make([][]byte, len(keyCols))
	for i, k := range keyCols {
		j := slices.IndexFunc(names, func(n string) bool { return strings.EqualFold(n, k) })
		if j < 0 || j >= len(row.Values) || row.Values[j].Null {
			return nil, nil
		}
		out[i] = slices.Clone(row.Values[j].Data)
	}
	return out, nil
}

// sqlLiteral writes a key value for SPLIT TABLE ... BY: an integer as it
// is, text quoted, bytes that are not UTF-8 as a hex literal.
func sqlLiteral(v []byte, integer bool) string {
	if integer {
		if _, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return string(v)
		}
		if _, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return string(v)
		}
	}
	if !utf8.Valid(v) {
		return fmt.Sprintf("X'%X'", v)
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(string(v)) + "'"
}

// splitStmt is the SPLIT TABLE statement of a plan.
func splitStmt(ps meta.PreSplit) string {
	stmt := "SPLIT TABLE " + quoteIdent(ps.DB) + "." + quoteIdent(ps.Table)
	if ps.Method == meta.PreSplitEven {
		return stmt + " BETWEEN " + ps.Between + " REGIONS " + strconv.Itoa(ps.Regions)
	}
	return stmt + " BY " + strings.Join(ps.By, ", ")
}

// runPreSplit splits and scatters on one connection, waiting for the
// scatter within preSplitWait, and counts the table's Regions before and
// after.
func runPreSplit(ctx context.Context, db *sql.DB, ps *meta.PreSplit) error {
	ctx, cancel := context.WithTimeout(ctx, preSplitWait+10*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if ps.RegionsBefore, err = countRegions(ctx, conn, ps.DB, ps.Table); err != nil {
		return err
	}
	for _, set := range []string{"SET SESSION tidb_wait_split_region_finish = 1",
		fmt.Sprintf("SET SESSION tidb_wait_split_region_timeout = %d", int(preSplitWait/time.Second))} {
		if _, err := conn.ExecContext(ctx, set); err != nil {
			return fmt.Errorf("%s: %w", set, err)
		}
	}
	var total int64
	if err := conn.QueryRowContext(ctx, splitStmt(*ps)).Scan(&total, &ps.Scattered); err != nil {
		return fmt.Errorf("split table %s.%s: %w", ps.DB, ps.Table, err)
	}
	if ps.RegionsAfter, err = countRegions(ctx, conn, ps.DB, ps.Table); err != nil {
		return err
	}
	return nil
}

// countRegions counts the Regions SHOW TABLE ... REGIONS lists.
func countRegions(ctx context.Context, conn *sql.Conn, db, table string) (int, error) {
	rows, err := conn.QueryContext(ctx, "SHOW TABLE "+quoteIdent(db)+"."+quoteIdent(table)+" REGIONS")
	if err != nil {
		return 0, fmt.Errorf("regions of %s.%s: %w", db, table, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("regions of %s.%s: %w", db, table, err)
	}
	return n, nil
}
