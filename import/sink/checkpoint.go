package sink

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrFenced means another node owns the shard now (its claim has a higher
// epoch): this node must drop the shard without writing anything more.
var ErrFenced = errors.New("shard fenced: another node owns it now")

// Checkpoint is a shard's progress as committed in the target, in the same
// transaction as its rows. It is the truth a new owner resumes from.
type Checkpoint struct {
	Job, Shard  string
	Epoch       int64
	NextOffset  int64 // where the next row starts (0: the chunk's start)
	NextLine    int64
	Rows        int64
	DigestCount int64
	DigestXOR   uint64 // of the source rows committed so far
	Finished    bool
}

const cpCols = "epoch, next_offset, next_line, rows_done, digest_count, digest_xor, finished"

func scanCheckpoint(row interface{ Scan(...any) error }, cp *Checkpoint) error {
	return row.Scan(&cp.Epoch, &cp.NextOffset, &cp.NextLine, &cp.Rows, &cp.DigestCount, &cp.DigestXOR, &cp.Finished)
}

// Acquire raises the shard's checkpoint row to epoch (creating it at the
// start of the shard) and returns it. From this commit on, every batch of an
// older owner fails its fence. A row already at a higher epoch means this
// claim is stale: ErrFenced.
func (t *Target) Acquire(ctx context.Context, job, shard string, epoch int64) (Checkpoint, error) {
	var cp Checkpoint
	err := t.retry(ctx, func() error {
		var err error
		cp, err = t.acquire(ctx, job, shard, epoch)
		return err
	})
	if err != nil && !errors.Is(err, ErrFenced) {
		err = fmt.Errorf("checkpoint of shard %s: %w", shard, err)
	}
	return cp, err
}

func (t *Target) acquire(ctx context.Context, job, shard string, epoch int64) (Checkpoint, error) {
	cp := Checkpoint{Job: job, Shard: shard}
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return cp, err
	}
	defer tx.Rollback()
	// INSERT IGNORE then SELECT ... FOR UPDATE: the row exists and is locked
	// either way, and two racing acquirers serialise on it.
	if _, err := tx.ExecContext(ctx, "INSERT IGNORE INTO "+MetaDB+".checkpoints (job, shard, epoch) VALUES (?, ?, ?)",
		job, shard, epoch); err != nil {
		return cp, err
	}
	err = scanCheckpoint(tx.QueryRowContext(ctx, "SELECT "+cpCols+" FROM "+MetaDB+".checkpoints WHERE job = ? AND shard = ? FOR UPDATE",
		job, shard), &cp)
	if err != nil {
		return cp, err
	}
	if cp.Epoch > epoch {
		return cp, ErrFenced
	}
	if cp.Epoch < epoch {
		if _, err := tx.ExecContext(ctx, "UPDATE "+MetaDB+".checkpoints SET epoch = ? WHERE job = ? AND shard = ?",
			epoch, job, shard); err != nil {
			return cp, err
		}
		cp.Epoch = epoch
	}
	return cp, tx.Commit()
}

// advance moves the checkpoint from `from` to `to` inside tx. It runs first
// in the batch's transaction, so it takes the row lock before any data row
// is written. When `to` is already committed (the commit of an earlier try
// landed but its answer was lost) it returns what is committed: that, not
// `to`, is the truth the owner goes on from, since the earlier try may have
// left rejected rows out of its rows and digest.
func advance(ctx context.Context, tx *sql.Tx, from, to Checkpoint) (landed *Checkpoint, err error) {
	res, err := tx.ExecContext(ctx, "UPDATE "+MetaDB+".checkpoints SET next_offset = ?, next_line = ?, rows_done = ?, "+
		"digest_count = ?, digest_xor = ?, finished = ? WHERE job = ? AND shard = ? AND epoch = ? AND next_offset = ? AND rows_done = ? AND finished = 0",
		to.NextOffset, to.NextLine, to.Rows, to.DigestCount, to.DigestXOR, to.Finished,
		from.Job, from.Shard, from.Epoch, from.NextOffset, from.Rows)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return nil, err
	}
	var now Checkpoint
	err = scanCheckpoint(tx.QueryRowContext(ctx, "SELECT "+cpCols+" FROM "+MetaDB+".checkpoints WHERE job = ? AND shard = ?",
		from.Job, from.Shard), &now)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("checkpoint of shard %s vanished: %w", from.Shard, ErrFenced)
	case err != nil:
		return nil, err
	case now.Epoch != from.Epoch:
		return nil, ErrFenced
	// The position names a commit; rows may differ by rejected rows.
	case now.NextOffset == to.NextOffset && now.NextLine == to.NextLine && now.Finished == to.Finished:
		now.Job, now.Shard = from.Job, from.Shard
		return &now, nil
	default:
		return nil, fmt.Errorf("checkpoint of shard %s at offset %d, rows %d; this owner expected %d, %d: %w",
			from.Shard, now.NextOffset, now.Rows, from.NextOffset, from.Rows, ErrFenced)
	}
}

// Finish moves a shard's position with no rows to write (to.Finished is
// usually set), fenced like a batch; rows and digest stay from's.
func (t *Target) Finish(ctx context.Context, from, to Checkpoint) error {
	to.Rows, to.DigestCount, to.DigestXOR = from.Rows, from.DigestCount, from.DigestXOR
	err := t.retry(ctx, func() error {
		tx, err := t.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		landed, err := advance(ctx, tx, from, to)
		if err != nil || landed != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil && !errors.Is(err, ErrFenced) {
		err = fmt.Errorf("finish shard %s: %w", from.Shard, err)
	}
	return err
}
