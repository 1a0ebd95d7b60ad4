package node

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"golang.org/x/sync/errgroup"

	"storm/election"
	"storm/import/checksum"
	"storm/import/sink"
	"storm/meta"
)

// VerifyPlanSummary is the verify-plan phase's marker summary: how each
// table will be checked.
type VerifyPlanSummary struct {
	Mode    string            `json:"mode"`
	Skipped string            `json:"skipped,omitempty"`
	Ranges  int               `json:"ranges"`
	Tables  []VerifyPlanTable `json:"tables,omitempty"`
	// Totals are the done records summed (node/verify.go readState): the
	// phases after this one read them here instead of every record.
	Totals *ImportTotals `json:"import_totals,omitempty"`
}

// VerifyPlanTable is one table's verification mode.
type VerifyPlanTable struct {
	DB     string `json:"db"`
	Table  string `json:"table"`
	Mode   string `json:"mode"`
	Ranges int    `json:"ranges,omitempty"`
	Note   string `json:"note,omitempty"`
}

// rowsPerRange sizes verify ranges: big enough that a range's query
// dominates its claim, small enough to spread a table over the peers.
const rowsPerRange = 100_000

// verifyPlan decides, once, how each table is checked, and splits the
// tables checked by digest into primary-key ranges that peers read back.
func (n *Node) verifyPlan(ctx context.Context, l *election.Leader) (any, error) {
	st, err := n.readState(ctx)
	if err != nil {
		return nil, err
	}
	mode := n.spec.Verify.Mode
	if mode == "" {
		mode = meta.VerifyDigest
	}
	sum := VerifyPlanSummary{Mode: mode, Totals: &st.totals}
	if reason := st.importUnfinished(); reason != "" {
		sum.Skipped = reason
		return sum, nil
	}
	// Every table's steps must be done (they build its deferred indexes):
	// a leader that got here early fails the attempt, and its node does
	// the steps that are left when it joins again.
	items, err := n.cli.Get(ctx, n.job.Dir(meta.KindSteps), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return nil, fmt.Errorf("count table steps: %w", err)
	}
	if int64(len(st.sdone)) < items.Count {
		return nil, fmt.Errorf("verify-plan: the steps of %d of %d tables are done", len(st.sdone), items.Count)
	}
	// The tables' steps planned most tables and wrote their ranges; a
	// table whose ranges are not all there (a retried job's verify starts
	// afresh) is planned here again.
	have := map[string]int{}
	if _, err := rangePages(ctx, n.cli, n.job.Dir(meta.KindVerifyRanges), 0, true, func(kvs []*mvccpb.KeyValue) error {
		for _, kv := range kvs {
			if k, ok := n.job.Parse(string(kv.Key)); ok {
				if i := strings.LastIndexByte(k.Name, '.'); i > 0 {
					have[k.Name[:i]]++
				}
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read verify ranges: %w", err)
	}
	planned := map[string]*meta.TableVerify{}
	for _, d := range st.sdone {
		if tv := d.Verify; tv != nil && tv.Ranges == have[d.DB+"."+d.Table] {
			planned[d.DB+"."+d.Table] = tv
		}
	}
	var ranges []meta.VerifyRange
	for _, pt := range st.planSum.Tables {
		if tv := planned[pt.DB+"."+pt.Table]; tv != nil {
			// The table's steps planned it and wrote its ranges.
			sum.Tables = append(sum.Tables, VerifyPlanTable{DB: pt.DB, Table: pt.Table, Mode: tv.Mode, Ranges: tv.Ranges, Note: tv.Note})
			sum.Ranges += tv.Ranges
			continue
		}
		cols, note := st.digestColumns(pt)
		vt, rs, err := n.planTableVerify(ctx, pt, mode, cols, note, st.expectedRows(pt))
		if err != nil {
			return nil, err
		}
		ranges = append(ranges, rs...)
		sum.Tables = append(sum.Tables, vt)
	}
	sum.Ranges += len(ranges)
	for i := 0; i < len(ranges); i += maxTxnOps {
		var ops []clientv3.Op
		for _, r := range ranges[i:min(i+maxTxnOps, len(ranges))] {
			ops = append(ops, clientv3.OpPut(n.job.Key(meta.KindVerifyRanges, r.ID), meta.Encode(r)))
		}
		if err := l.Commit(ctx, ops...); err != nil {
			return nil, fmt.Errorf("write verify ranges: %w", err)
		}
	}
	n.log.Info("verify planned", "mode", mode, "ranges", len(ranges))
	return sum, nil
}

// planTableVerify decides how one table is checked and, for a digest,
// splits it into the ranges peers read back. cols are the digest columns
// of its shards, or note says why it can only be counted.
func (n *Node) planTableVerify(ctx context.Context, pt meta.PlanTable, mode string, cols []string, note string, rows int64) (VerifyPlanTable, []meta.VerifyRange, error) {
	vt := VerifyPlanTable{DB: pt.DB, Table: pt.Table, Mode: mode}
	if mode != meta.VerifyDigest {
		return vt, nil, nil
	}
	if note != "" {
		vt.Mode, vt.Note = meta.VerifyCount, note
		return vt, nil, nil
	}
	rs, err := n.splitTable(ctx, pt, cols, rows)
	if err != nil {
		return vt, nil, err
	}
	vt.Ranges = len(rs)
	// Each range decides again (rangeDigest): this only says in the plan,
	// and in the barrier, which way it will go. A column gone from the
	// target fails the ranges, not this.
	how := "by the server"
	if tcols, err := n.rangeColumns(ctx, rs[0]); err == nil {
		if _, err := n.rowHashSQL(tcols); err != nil {
			how, vt.Note = "read back", "target digest read back by storm: "+err.Error()
		}
	}
	n.log.Info("verify digest planned", "table", pt.DB+"."+pt.Table, "ranges", len(rs), "target_digest", how)
	return vt, rs, nil
}

// importUnfinished says why the import can't be verified ("" if it can).
func (st *jobState) importUnfinished() string {
	switch {
	case st.plan.Error != "":
		return "plan failed"
	case st.prepare.Error != "":
		return "prepare failed"
	case st.cancel != nil:
		return "job cancelled"
	case len(st.failed) > 0:
		return fmt.Sprintf("%d shard(s) failed", len(st.failed))
	case len(st.sfailed) > 0:
		return fmt.Sprintf("the steps of %d table(s) failed", len(st.sfailed))
	}
	return ""
}

func (st *jobState) expectedRows(pt meta.PlanTable) int64 {
	if tt := st.totals.Tables[pt.DB+"."+pt.Table]; tt != nil {
		return tt.Rows
	}
	return 0
}

// digestColumns is the one column set every shard of the table hashed, or
// a note saying why the table can only be counted.
func (st *jobState) digestColumns(pt meta.PlanTable) ([]string, string) {
	if pt.InitialRows > 0 {
		return nil, fmt.Sprintf("incremental: the table held %d rows before the import", pt.InitialRows)
	}
	return st.fold.digestColumns(pt.DB, pt.Table)
}

// splitTable cuts a table into ranges of its primary key when that is one
// integer column, and into one range otherwise.
func (n *Node) splitTable(ctx context.Context, pt meta.PlanTable, cols []string, rows int64) ([]meta.VerifyRange, error) {
	db := n.target.DB()
	base := meta.VerifyRange{DB: pt.DB, Table: pt.Table, Columns: cols}
	whole := func() []meta.VerifyRange {
		r := base
		r.ID = fmt.Sprintf("%s.%s.%05d", pt.DB, pt.Table, 0)
		return []meta.VerifyRange{r}
	}
	pk, err := integerPK(ctx, db, pt.DB, pt.Table)
	if err != nil {
		return nil, err
	}
	parts := min(max(1, (rows+rowsPerRange-1)/rowsPerRange), 256)
	if pk == "" || parts == 1 {
		return whole(), nil
	}
	var lo, hi sql.NullInt64
	q := fmt.Sprintf("SELECT MIN(%[1]s), MAX(%[1]s) FROM %[2]s", sink.QuoteIdent(pk), sink.TableRef{DB: pt.DB, Name: pt.Table}.Quoted())
	if err := db.QueryRowContext(ctx, q).Scan(&lo, &hi); err != nil || !lo.Valid {
		// An unsigned key beyond int64 does not scan: read it whole.
		return whole(), nil
	}
	span := uint64(hi.Int64-lo.Int64) + 1
	step := int64(max(span/uint64(parts), 1))
	var out []meta.VerifyRange
	for i := int64(0); i < parts; i++ {
		r := base
		r.ID = fmt.Sprintf("%s.%s.%05d", pt.DB, pt.Table, i)
		r.PK = pk
		if i > 0 {
			v := lo.Int64 + i*step
			r.Lo = &v
		}
		if i < parts-1 {
			v := lo.Int64 + (i+1)*step
			r.Hi = &v
		}
		out = append(out, r)
	}
	return out, nil
}

// integerPK returns the table's primary key column when it is a single
// integer column.
func integerPK(ctx context.Context, db *sql.DB, schema, table string) (string, error) {
	rows, err := db.QueryContext(ctx, `SELECT k.COLUMN_NAME, c.DATA_TYPE FROM information_schema.KEY_COLUMN_USAGE k
		JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = k.TABLE_SCHEMA AND c.TABLE_NAME = k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME
		WHERE k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ? AND k.CONSTRAINT_NAME = 'PRIMARY'`, schema, table)
	if err != nil {
		return "", fmt.Errorf("primary key of %s.%s: %w", schema, table, err)
	}
	defer rows.Close()
	var names, types []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return "", err
		}
		names, types = append(names, name), append(types, typ)
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if len(names) != 1 {
		return "", nil
	}
	switch strings.ToLower(types[0]) {
	case "tinyint", "smallint", "mediumint", "int", "bigint":
		return names[0], nil
	}
	return "", nil
}

// verifyRanges digests the verify ranges with this node's workers, as
// peers do, until every range is done.
func (n *Node) verifyRanges(ctx context.Context, sess *concurrency.Session) error {
	v := newView[meta.VerifyRange](n.job, meta.VerifyPool, n.cfg.NodeID, n.log)
	stopView, err := v.start(ctx, n.cli)
	if err != nil {
		return err
	}
	defer stopView()
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < n.cfg.Workers; i++ {
		g.Go(func() error {
			for {
				id, r, ok := v.next(gctx)
				if !ok {
					return nil
				}
				if err := n.verifyRange(gctx, sess, id, r); err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	_, err = v.waitSettled(ctx)
	return err
}

// verifyRange claims one range, digests it and records the digest. A
// range that keeps failing is recorded as failed: the job can't be
// verified.
func (n *Node) verifyRange(ctx context.Context, sess *concurrency.Session, id string, r meta.VerifyRange) error {
	pool := meta.VerifyPool
	epoch, ok, err := pool.Claim(ctx, n.cli, n.job, id, n.cfg.NodeID, sess.Lease())
	if err != nil || !ok {
		return err
	}
	start := time.Now()
	var d checksum.Digest
	for try := 1; ; try++ {
		d, err = n.rangeDigest(ctx, r)
		if err == nil || ctx.Err() != nil || try == 5 {
			break
		}
		n.log.Warn("verify range failed; retrying", "range", id, "try", try, "err", err)
		time.Sleep(time.Duration(try) * time.Second)
	}
	if ctx.Err() != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
		defer cancel()
		_ = pool.Release(rctx, n.cli, n.job, id, epoch)
		return ctx.Err()
	}
	if err != nil {
		f := meta.Failed{Shard: id, File: r.DB + "." + r.Table, Reason: err.Error(), Node: n.cfg.NodeID, At: time.Now().UTC()}
		_, ferr := pool.Fail(ctx, n.cli, n.job, id, epoch, f)
		return ferr
	}
	rec := meta.VerifyDone{DB: r.DB, Table: r.Table, DigestCount: d.Count, DigestXOR: d.Hex(), Node: n.cfg.NodeID,
		Seconds: time.Since(start).Seconds(), At: time.Now().UTC()}
	_, err = pool.Complete(ctx, n.cli, n.job, id, epoch, rec)
	return err
}

// rangeDigest computes the target digest of a range. Where the server can
// compute the row hash of every digest column (checksum.RowHashSQL), one
// aggregate query does, and no row crosses the network; otherwise, or when
// that query fails, the rows are read back and hashed here.
func (n *Node) rangeDigest(ctx context.Context, r meta.VerifyRange) (checksum.Digest, error) {
	cols, err := n.rangeColumns(ctx, r)
	if err != nil {
		return checksum.Digest{}, err
	}
	if expr, err := n.rowHashSQL(cols); err == nil {
		d, err := serverDigest(ctx, n.target.DB(), r, expr)
		if err == nil || ctx.Err() != nil {
			return d, err
		}
		n.log.Warn("the server could not digest the range; reading it back", "table", r.DB+"."+r.Table, "range", r.ID, "err", err)
	}
	return readBack(ctx, n.target.DB(), r, n.rowHash, cols)
}

// rowHashSQL is the server's row hash of cols, or why the target's rows
// must be read back instead.
func (n *Node) rowHashSQL(cols []checksum.Column) (string, error) {
	if v := n.target.Version(); !checksum.ServerComputes(v) {
		return "", fmt.Errorf("server %q: its text of each type is not known", v)
	}
	return checksum.RowHashSQL(n.rowHash, cols)
}

// rangeColumns returns the types of the range's digest columns, in the
// range's order.
func (n *Node) rangeColumns(ctx context.Context, r meta.VerifyRange) ([]checksum.Column, error) {
	tcols, err := n.digestColumns(ctx, r.DB, r.Table)
	if err != nil {
		return nil, err
	}
	var cols []checksum.Column
	for _, name := range r.Columns {
		found := false
		for _, c := range tcols {
			if strings.EqualFold(c.Name, name) {
				cols, found = append(cols, c), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("verify %s.%s: column %s is gone from the target", r.DB, r.Table, name)
		}
	}
	return cols, nil
}

// rangeWhere is the WHERE clause of a range, with its arguments.
func rangeWhere(r meta.VerifyRange) (string, []any) {
	var conds []string
	var args []any
	if r.Lo != nil {
		conds, args = append(conds, sink.QuoteIdent(r.PK)+" >= ?"), append(args, *r.Lo)
	}
	if r.Hi != nil {
		conds, args = append(conds, sink.QuoteIdent(r.PK)+" < ?"), append(args, *r.Hi)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// serverDigest has the server digest a range: COUNT(*) and the BIT_XOR of
// the row hashes, which the server returns as an unsigned 64-bit integer
// (BIT_XOR of no rows is 0).
func serverDigest(ctx context.Context, db *sql.DB, r meta.VerifyRange, rowHash string) (checksum.Digest, error) {
	var d checksum.Digest
	where, args := rangeWhere(r)
	q := "SELECT COUNT(*), BIT_XOR(" + rowHash + ") FROM " + sink.TableRef{DB: r.DB, Name: r.Table}.Quoted() + where
	if err := db.QueryRowContext(ctx, q, args...).Scan(&d.Count, &d.XOR); err != nil {
		return checksum.Digest{}, fmt.Errorf("verify %s.%s: server digest: %w", r.DB, r.Table, err)
	}
	return d, nil
}

// readBack computes the target digest of a range by reading its rows over
// the text protocol (the driver interpolates the bounds, so no binary
// protocol) and hashing them as the import hashed the source.
func readBack(ctx context.Context, db *sql.DB, r meta.VerifyRange, rh checksum.RowHash, cols []checksum.Column) (checksum.Digest, error) {
	var d checksum.Digest
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = sink.QuoteIdent(c.Name)
		switch c.DataType {
		case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
			// The same text the server would send, but as a string: the
			// driver parses integer columns into int64 and database/sql
			// formats them back into RawBytes, a fifth of the read-back's
			// CPU for nothing.
			q[i] = "CAST(" + q[i] + " AS CHAR)"
		}
	}
	where, args := rangeWhere(r)
	query := "SELECT " + strings.Join(q, ",") + " FROM " + sink.TableRef{DB: r.DB, Name: r.Table}.Quoted() + where
	h := checksum.NewRowHasher(rh, cols)
	fields := make([]checksum.Field, len(cols))
	add := func() error {
		hv, err := h.Hash(fields)
		if err == nil {
			d.Add(hv)
		}
		return err
	}
	err := readRaw(ctx, db, query, args, fields, add)
	if errors.Is(err, errNoRaw) {
		err = readRows(ctx, db, query, args, fields, add)
	}
	if err != nil {
		return d, fmt.Errorf("verify %s.%s: read back: %w", r.DB, r.Table, err)
	}
	return d, nil
}

// errNoRaw: the driver can't be queried directly; readRows reads instead.
var errNoRaw = errors.New("no raw driver query")

// readRaw runs the query on the driver itself and calls add with fields
// filled in for each row. database/sql would box every value, then copy it
// into RawBytes; the driver's own values (bytes of its read buffer, valid
// until the next row) go to the hasher as they are.
func readRaw(ctx context.Context, db *sql.DB, query string, args []any, fields []checksum.Field, add func() error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		qc, ok := dc.(driver.QueryerContext)
		if !ok {
			return errNoRaw
		}
		named := make([]driver.NamedValue, len(args))
		for i, a := range args {
			named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
		rows, err := qc.QueryContext(ctx, query, named)
		if errors.Is(err, driver.ErrSkip) {
			return errNoRaw
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		dest := make([]driver.Value, len(fields))
		nums := make([][]byte, len(fields))
		for {
			if err := rows.Next(dest); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			for i, v := range dest {
				switch x := v.(type) {
				case nil:
					fields[i] = checksum.Field{Null: true}
				case []byte:
					fields[i] = checksum.Field{Data: x}
				case string:
					fields[i] = checksum.Field{Data: []byte(x)}
				case int64:
					nums[i] = strconv.AppendInt(nums[i][:0], x, 10)
					fields[i] = checksum.Field{Data: nums[i]}
				case uint64:
					nums[i] = strconv.AppendUint(nums[i][:0], x, 10)
					fields[i] = checksum.Field{Data: nums[i]}
				case float32:
					// FLOAT: the driver parsed the server's text into the
					// nearest float32, which the shortest form names
					// exactly; the hasher narrows it to the same float32.
					nums[i] = strconv.AppendFloat(nums[i][:0], float64(x), 'g', -1, 32)
					fields[i] = checksum.Field{Data: nums[i]}
				case float64:
					nums[i] = strconv.AppendFloat(nums[i][:0], x, 'g', -1, 64)
					fields[i] = checksum.Field{Data: nums[i]}
				default:
					return fmt.Errorf("column %d: unexpected %T from the driver", i+1, v)
				}
			}
			if err := add(); err != nil {
				return err
			}
		}
	})
}

// readRows is readRaw through database/sql.
func readRows(ctx context.Context, db *sql.DB, query string, args []any, fields []checksum.Field, add func() error) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	raw := make([]sql.RawBytes, len(fields))
	ptrs := make([]any, len(fields))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, b := range raw {
			fields[i] = checksum.Field{Null: b == nil, Data: b}
		}
		if err := add(); err != nil {
			return err
		}
	}
	return rows.Err()
}
