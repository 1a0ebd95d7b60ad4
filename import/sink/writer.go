package sink

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"

	"storm/import/source"
)

// Writer collects rows of one shard and commits them in fenced batches.
//
// A batch is kept once, as the text LOAD DATA reads (tab-separated, escaped
// with backslashes, \N for NULL): the INSERT path decodes its values from
// that text again, so a batch costs its encoded size and one small record
// per row, whatever the number of columns.
type Writer struct {
	t     *Target
	shard string
	file  string
	table TableRef
	cols  []string // nil: positional, the table's own column order

	tsv  []byte   // the batch as LOAD DATA reads it, row after row
	rows []rowRef // where each row starts in tsv

	vals []value // the decoded values of the rows of one INSERT statement
	dec  []byte  // their bytes

	// asBytes marks the values whose column takes bytes (bytesColumns),
	// learned at the first INSERT.
	asBytes []bool

	// landed is what an earlier try of the batch committed when its answer
	// was lost (begin finds it); the try in progress reports it.
	landed *Checkpoint
}

type value struct {
	off, n int // into dec
	null   bool
}

type rowRef struct {
	start int // of the row's text in tsv; it ends with '\n' where the next row starts
	line  int64
	hash  uint64 // the row's source digest hash
	// end and nextLine are the source position after the row: where a
	// batch split after it resumes (Flush on a transaction too large).
	end, nextLine int64
}

// Result says how a batch went in.
type Result struct {
	Rows     int
	Affected int64
	LoadData bool // false: INSERT (by config, or LOAD DATA's result was not clean)
	Rejected int  // rows the target refused, recorded in storm_meta.rejected (import.max-errors)
	// Checkpoint is what was committed: `to` with the rows and digest of
	// the rows that went in.
	Checkpoint Checkpoint
	// Parts is how many transactions the batch took: more than one when
	// the target refused it as too large for one (TiDB's
	// txn-total-size-limit) and it was split.
	Parts int
}

// NewWriter starts a writer for a shard of file into table. cols names the
// source's columns; nil means the table's own order.
func (t *Target) NewWriter(job, shard, file string, table TableRef, cols []string) *Writer {
	return &Writer{t: t, shard: shard, file: file, table: table, cols: append([]string(nil), cols...)}
}

// NewWriterFrom is NewWriter for a writer that takes over old's buffers,
// emptied; old must be idle (no Flush running) and is not used again. A
// worker that hands its writers on from shard to shard grows each batch
// buffer to the batch size once: grown by append from empty, a 4 MiB buffer
// copies about five times its size on the way (slices past 256 KiB grow by
// a quarter), and a fresh pair per shard did that twice per shard.
func (t *Target) NewWriterFrom(old *Writer, job, shard, file string, table TableRef, cols []string) *Writer {
	w := t.NewWriter(job, shard, file, table, cols)
	if old != nil {
		w.tsv, w.rows = old.tsv[:0], old.rows[:0]
		old.tsv, old.rows = nil, nil
	}
	return w
}

// Reserve makes room for a batch of n bytes of text, so that the buffer
// is allocated once at its size rather than grown to it.
func (w *Writer) Reserve(n int) {
	if n > cap(w.tsv) {
		w.tsv = slices.Grow(w.tsv, n-len(w.tsv))
	}
}

// Add buffers a row with its digest hash; it copies the values.
func (w *Writer) Add(r source.Row, hash uint64) {
	w.rows = append(w.rows, rowRef{start: len(w.tsv), line: r.Line, hash: hash, end: r.End, nextLine: r.NextLine})
	w.tsv = append(r.AppendTSV(w.tsv), '\n')
}

// text is row i's encoded text, without its line end.
func (w *Writer) text(i int) []byte {
	end := len(w.tsv)
	if i+1 < len(w.rows) {
		end = w.rows[i+1].start
	}
	return w.tsv[w.rows[i].start : end-1]
}

// decode appends the values of row i to w.vals and their bytes to w.dec,
// undoing Add's encoding. The caller sizes w.dec so that it never grows
// while values point into it.
func (w *Writer) decode(i int) {
	b := w.text(i)
	for {
		j := bytes.IndexByte(b, '\t')
		f := b
		if j >= 0 {
			f = b[:j]
		}
		if len(f) == 2 && f[0] == '\\' && f[1] == 'N' {
			w.vals = append(w.vals, value{null: true})
		} else {
			off := len(w.dec)
			for k := 0; k < len(f); k++ {
				c := f[k]
				if c == '\\' && k+1 < len(f) {
					k++
					c = source.TSVUnescape[f[k]]
				}
				w.dec = append(w.dec, c)
			}
			w.vals = append(w.vals, value{off: off, n: len(w.dec) - off})
		}
		if j < 0 {
			return
		}
		b = b[j+1:]
	}
}

// Pending is the size of the buffered batch in bytes.
func (w *Writer) Pending() int { return len(w.tsv) }

// PendingRows is the number of buffered rows.
func (w *Writer) PendingRows() int { return len(w.rows) }

// Reset drops the buffered rows without writing them.
func (w *Writer) Reset() { w.reset() }

func (w *Writer) reset() {
	w.tsv, w.rows = w.tsv[:0], w.rows[:0]
	w.vals, w.dec = nil, nil // INSERT's scratch: only a fallback needs it
}

// Flush commits the buffered rows and moves the checkpoint from `from` to
// `to` (its position and Finished; Flush adds the rows and their digest) in
// one transaction. ErrFenced: another node owns the shard, nothing was
// written. A *RowError names the row the target refused.
func (w *Writer) Flush(ctx context.Context, from, to Checkpoint) (Result, error) {
	res, err := w.flush(ctx, from, to)
	if err != nil {
		var re *RowError
		if !errors.Is(err, ErrFenced) && !errors.As(err, &re) {
			err = fmt.Errorf("shard %s into %s: %w", w.shard, w.table, err)
		}
		return res, err
	}
	w.reset()
	return res, nil
}

func (w *Writer) flush(ctx context.Context, from, to Checkpoint) (Result, error) {
	var res Result
	err := w.t.retry(ctx, func() error {
		var err error
		res, err = w.commit(ctx, from, w.advanced(from, to, nil))
		return err
	})
	if tooLarge(err) {
		if len(w.rows) > 1 {
			return w.split(ctx, from, to)
		}
		if len(w.rows) == 1 {
			// Alone and still too large: no split helps; name the row.
			return res, &RowError{File: w.file, Line: w.rows[0].line, Table: w.table.String(),
				Reason: err.Error() + " (this row alone is over the target's transaction size limit)"}
		}
	}
	res.Parts = 1
	return res, err
}

// split commits the batch as two halves, each in its own fenced
// transaction, the first ending at its last row's source position; each
// half splits again if it is still too large.
func (w *Writer) split(ctx context.Context, from, to Checkpoint) (Result, error) {
	k := len(w.rows) / 2
	mid := to
	mid.NextOffset, mid.NextLine, mid.Finished = w.rows[k-1].end, w.rows[k-1].nextLine, false
	first, err := w.part(0, k).flush(ctx, from, mid)
	if err != nil {
		return first, err
	}
	second, err := w.part(k, len(w.rows)).flush(ctx, first.Checkpoint, to)
	second.Rows += first.Rows
	second.Affected += first.Affected
	second.Rejected += first.Rejected
	second.Parts += first.Parts
	second.LoadData = second.LoadData && first.LoadData
	return second, err
}

// part is a writer over rows [i, j) of w's batch, sharing its text.
func (w *Writer) part(i, j int) *Writer {
	p := &Writer{t: w.t, shard: w.shard, file: w.file, table: w.table, cols: w.cols, asBytes: w.asBytes}
	base, end := w.rows[i].start, len(w.tsv)
	if j < len(w.rows) {
		end = w.rows[j].start
	}
	p.tsv = w.tsv[base:end:end]
	p.rows = make([]rowRef, j-i)
	for n, r := range w.rows[i:j] {
		r.start -= base
		p.rows[n] = r
	}
	return p
}

// commit is one try at the batch.
func (w *Writer) commit(ctx context.Context, from, to Checkpoint) (res Result, err error) {
	w.landed = nil
	defer func() {
		if err == nil && w.landed != nil {
			res.Checkpoint = *w.landed
		}
	}()
	res = Result{Rows: len(w.rows), Checkpoint: to}
	if w.t.loadData && len(w.rows) > 0 {
		ok, affected, err := w.tryLoad(ctx, from, to)
		if err != nil || ok {
			res.LoadData, res.Affected = true, affected
			return res, err
		}
		// LOAD DATA LOCAL turns every data error into a warning (the
		// server can't stop the client's stream), so a batch with warnings
		// was rolled back and goes in again by INSERT, which fails
		// precisely on the bad row.
	}
	affected, err := w.insertBatch(ctx, from, to)
	res.Affected = affected
	var me *mysql.MySQLError
	if err != nil && errors.As(err, &me) && !transient(err) && !tooLarge(err) {
		res.Checkpoint, res.Rejected, err = w.isolate(ctx, from, to)
	}
	return res, err
}

// advanced is `to` with the rows and digest of the batch added to `from`'s,
// leaving out the rejected rows.
func (w *Writer) advanced(from, to Checkpoint, rejected map[int]bool) Checkpoint {
	to.Rows, to.DigestCount, to.DigestXOR = from.Rows, from.DigestCount, from.DigestXOR
	for i, r := range w.rows {
		if rejected[i] {
			continue
		}
		to.Rows++
		to.DigestCount++
		to.DigestXOR ^= r.hash
	}
	return to
}

// begin opens the batch's transaction and passes the fence. done: the
// batch was already committed by an earlier try.
func (w *Writer) begin(ctx context.Context, from, to Checkpoint) (*sql.Tx, bool, error) {
	tx, err := w.t.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, err
	}
	landed, err := advance(ctx, tx, from, to)
	if err != nil || landed != nil {
		tx.Rollback()
		w.landed = landed
		return nil, landed != nil, err
	}
	return tx, false, nil
}

var readerSeq atomic.Int64

// tryLoad streams the batch with LOAD DATA LOCAL INFILE. ok=false (and no
// error) means the server reported warnings: the transaction was rolled
// back.
func (w *Writer) tryLoad(ctx context.Context, from, to Checkpoint) (ok bool, affected int64, err error) {
	tx, done, err := w.begin(ctx, from, to)
	if err != nil || done {
		return done, 0, err
	}
	defer tx.Rollback()
	name := fmt.Sprintf("storm-%d", readerSeq.Add(1))
	mysql.RegisterReaderHandler(name, func() io.Reader { return bytes.NewReader(w.tsv) })
	defer mysql.DeregisterReaderHandler(name)

	var b strings.Builder
	b.WriteString("LOAD DATA LOCAL INFILE 'Reader::" + name + "' ")
	switch w.t.cfg.OnDuplicate {
	case "replace":
		b.WriteString("REPLACE ")
	case "ignore":
		b.WriteString("IGNORE ")
	}
	b.WriteString("INTO TABLE " + w.table.Quoted() +
		" CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ENCLOSED BY '' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'")
	if w.cols != nil {
		b.WriteString(" " + columnList(w.cols))
	}
	r, err := tx.ExecContext(ctx, b.String())
	if err != nil {
		return false, 0, err
	}
	affected, _ = r.RowsAffected()
	var warnings int64
	if err := tx.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&warnings); err != nil {
		return false, 0, err
	}
	rows := int64(len(w.rows))
	clean := false
	switch w.t.cfg.OnDuplicate {
	case "replace":
		clean = warnings == 0 && affected >= rows
	case "ignore":
		// Each skipped duplicate leaves one warning; anything more is data.
		clean = warnings == rows-affected
	default:
		clean = warnings == 0 && affected == rows
	}
	if !clean {
		return false, 0, nil
	}
	return true, affected, tx.Commit()
}

func columnList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = QuoteIdent(c)
	}
	return "(" + strings.Join(q, ",") + ")"
}

func (w *Writer) verb() string {
	switch w.t.cfg.OnDuplicate {
	case "replace":
		return "REPLACE INTO "
	case "ignore":
		return "INSERT IGNORE INTO "
	}
	return "INSERT INTO "
}

// maxStmtBytes keeps multi-row INSERTs well under max_allowed_packet.
const maxStmtBytes = 1 << 20

// insertBatch writes the batch with multi-row INSERT statements in one
// transaction.
func (w *Writer) insertBatch(ctx context.Context, from, to Checkpoint) (int64, error) {
	tx, done, err := w.begin(ctx, from, to)
	if err != nil || done {
		return 0, err
	}
	defer tx.Rollback()
	var affected int64
	for i := 0; i < len(w.rows); {
		j, size := i, 0
		for j < len(w.rows) && (j == i || size < maxStmtBytes) {
			size += w.rowSize(j)
			j++
		}
		n, err := w.insert(ctx, tx, i, j)
		if err != nil {
			return affected, err
		}
		affected += n
		i = j
	}
	return affected, tx.Commit()
}

// rowSize estimates what row i adds to an INSERT statement.
func (w *Writer) rowSize(i int) int {
	b := w.text(i)
	return 3 + len(b) + 12*(bytes.Count(b, []byte{'\t'})+1)
}

// insert runs one statement over rows. In ignore mode a value the column
// can't hold is only a warning, so warnings beyond the skipped duplicates
// count as an error.
func (w *Writer) insert(ctx context.Context, tx *sql.Tx, from, to int) (int64, error) {
	var b strings.Builder
	b.WriteString(w.verb() + w.table.Quoted())
	if w.cols != nil {
		b.WriteString(" " + columnList(w.cols))
	}
	b.WriteString(" VALUES ")
	// Decoded values are never longer than their text, so w.dec sized to
	// the rows' text does not move while args point into it.
	size := 0
	for i := from; i < to; i++ {
		size += len(w.text(i))
	}
	if cap(w.dec) < size {
		w.dec = make([]byte, 0, size)
	}
	w.dec, w.vals = w.dec[:0], w.vals[:0]
	if w.asBytes == nil {
		var err error
		if w.asBytes, err = w.bytesColumns(ctx); err != nil {
			return 0, err
		}
	}
	var args []any
	for k := from; k < to; k++ {
		if k > from {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		first := len(w.vals)
		w.decode(k)
		for i, v := range w.vals[first:] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('?')
			switch {
			case v.null:
				args = append(args, nil)
			case i < len(w.asBytes) && w.asBytes[i]:
				// []byte interpolates as _binary'...': the bytes as they are.
				args = append(args, w.dec[v.off:v.off+v.n:v.off+v.n])
			default:
				// A string is text in the connection's utf8mb4, converted to
				// the column's character set as LOAD DATA's CHARACTER SET
				// utf8mb4 does: a latin1 column gets latin1, not UTF-8 bytes.
				args = append(args, string(w.dec[v.off:v.off+v.n]))
			}
		}
		b.WriteByte(')')
	}
	res, err := tx.ExecContext(ctx, b.String(), args...)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	if w.t.cfg.OnDuplicate == "ignore" {
		// SHOW WARNINGS first: on TiDB, SELECT @@warning_count clears the
		// list, and SHOW WARNINGS keeps the count on both servers.
		first, err := firstDataWarning(ctx, tx)
		if err != nil {
			return n, err
		}
		var warnings int64
		if err := tx.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&warnings); err != nil {
			return n, err
		}
		if warnings > int64(to-from)-n {
			if first == nil {
				first = &mysql.MySQLError{Number: 1265, Message: "a value was changed to fit its column (the server listed no warning beyond duplicates)"}
			}
			return n, first
		}
	}
	return n, nil
}

// firstDataWarning is the statement's first listed warning that is not a
// skipped duplicate (nil: none), as an error. (TiDB has no SHOW WARNINGS
// LIMIT.)
func firstDataWarning(ctx context.Context, tx *sql.Tx) (*mysql.MySQLError, error) {
	rows, err := tx.QueryContext(ctx, "SHOW WARNINGS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var first *mysql.MySQLError
	for rows.Next() {
		var level, msg string
		var code int
		if err := rows.Scan(&level, &code, &msg); err != nil {
			return nil, err
		}
		if code != 1062 && first == nil {
			first = &mysql.MySQLError{Number: uint16(code), Message: msg}
		}
	}
	return first, rows.Err()
}

// bytesColumns says, for each value of a row, whether its column takes
// bytes rather than text: binary strings, BLOBs and BIT.
func (w *Writer) bytesColumns(ctx context.Context) ([]bool, error) {
	cols, err := w.t.TableColumns(ctx, w.table.DB, w.table.Name)
	if err != nil {
		return nil, err
	}
	kind := map[string]bool{}
	for _, c := range cols {
		switch strings.ToLower(c.DataType) {
		case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit":
			kind[strings.ToLower(c.Name)] = true
		}
	}
	names := w.cols
	if names == nil {
		for _, c := range cols {
			names = append(names, c.Name)
		}
	}
	out := make([]bool, len(names))
	for i, n := range names {
		out[i] = kind[strings.ToLower(n)]
	}
	return out, nil
}

// isolate finds the rows the target refuses by writing the batch row by
// row. Within the job's import.max-errors, refused rows are recorded in
// storm_meta.rejected with file, line, column and reason, in the batch's
// transaction, and left out of the checkpoint's rows and digest; past it the
// first refused row fails the shard as a *RowError. A batch that goes in
// whole this way (the refusal was not about one row) is committed.
func (w *Writer) isolate(ctx context.Context, from, to Checkpoint) (Checkpoint, int, error) {
	rejected := map[int]bool{}
	var reasons []*RowError
	tx, done, err := w.begin(ctx, from, to)
	if err != nil || done {
		return to, 0, err
	}
	defer tx.Rollback()
	for i, r := range w.rows {
		if _, err := w.insert(ctx, tx, i, i+1); err != nil {
			var me *mysql.MySQLError
			if !errors.As(err, &me) || transient(err) {
				return to, 0, err
			}
			rejected[i] = true
			reasons = append(reasons, &RowError{File: w.file, Line: r.line, Table: w.table.String(), Column: errColumn(me.Message), Reason: me.Message})
		}
	}
	if len(reasons) == 0 {
		return to, 0, tx.Commit()
	}
	if w.t.cfg.MaxErrors <= 0 {
		return to, 0, reasons[0]
	}
	for _, re := range reasons {
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+MetaDB+".rejected (job, shard, file, line, tbl, col, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
			from.Job, from.Shard, re.File, re.Line, re.Table, re.Column, re.Reason); err != nil {
			return to, 0, err
		}
	}
	var total int64
	// FOR UPDATE serialises the count with other shards' rejections, so
	// the limit holds across nodes.
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+MetaDB+".rejected WHERE job = ? FOR UPDATE", from.Job).Scan(&total); err != nil {
		return to, 0, err
	}
	if total > w.t.cfg.MaxErrors {
		re := *reasons[0]
		re.Reason += fmt.Sprintf(" (import.max-errors = %d exceeded: %d rows rejected in the job)", w.t.cfg.MaxErrors, total)
		return to, 0, &re
	}
	// The fence above moved the checkpoint with every row counted; put the
	// rejected rows' share back out.
	cp := w.advanced(from, to, rejected)
	if _, err := tx.ExecContext(ctx, "UPDATE "+MetaDB+".checkpoints SET rows_done = ?, digest_count = ?, digest_xor = ? WHERE job = ? AND shard = ? AND epoch = ?",
		cp.Rows, cp.DigestCount, cp.DigestXOR, from.Job, from.Shard, from.Epoch); err != nil {
		return to, 0, err
	}
	return cp, len(reasons), tx.Commit()
}

// MySQL says "column 'id'", MariaDB "column `db`.`t`.`id`".
var columnInMessage = regexp.MustCompile("column (?:'([^']+)'|(?:`[^`]*`\\.)*`([^`]+)`)")

// errColumn picks the column out of a server message, or "".
func errColumn(msg string) string {
	if m := columnInMessage.FindStringSubmatch(msg); m != nil {
		return m[1] + m[2]
	}
	return ""
}
