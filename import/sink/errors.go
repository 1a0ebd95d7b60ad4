package sink

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// RowError is a row the target refused: a value the column can't hold, a
// duplicate key in error mode. Retrying cannot fix it.
type RowError struct {
	File   string
	Line   int64
	Table  string
	Column string // when the server named it
	Reason string
}

func (e *RowError) Error() string {
	return fmt.Sprintf("%s:%d: table %s refused the row: %s", e.File, e.Line, e.Table, e.Reason)
}

// transient errors are worth retrying: the checkpoint makes a retried batch
// safe. Everything the server says about the data itself is not.
func transient(err error) bool {
	if err == nil || errors.Is(err, ErrFenced) {
		return false
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1040, // too many connections
			1053, // server shutdown in progress
			1205, // lock wait timeout
			1213, // deadlock
			1317, // query interrupted (KILL QUERY; a cancelled context is checked first)
			1927, // connection was killed
			2006, // server has gone away
			2013, // lost connection during query
			8002, // TiDB: SELECT FOR UPDATE write conflict
			8005, // TiDB: write conflict (optimistic transactions)
			8022, // TiDB: transaction commit failed, retryable
			8027, // TiDB: information schema expired
			8028, // TiDB: schema changed
			8229, // TiDB: pessimistic lock expired
			9001, // TiDB: PD server timeout
			9002, // TiDB: TiKV server timeout
			9003, // TiDB: TiKV server busy
			9004, // TiDB: resolve lock timeout
			9005, // TiDB: region unavailable
			9006, // TiDB: GC life time too short
			9007, // TiDB: write conflict
			9008, // TiDB: TiKV store limit
			9010, // TiDB: TiKV stale command
			9011: // TiDB: TiKV max timestamp not synced
			// Every other server error fails the shard (ServerRefused): a
			// code missing here that a retry would have cured fails a job
			// that could have gone on, so the list follows TiDB's errno
			// package for TiKV and PD.
			return true
		}
		return false
	}
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.As(err, &ne)
}

// tooLarge reports whether the server refused a transaction for its size
// alone: the same rows go in when split into smaller transactions.
func tooLarge(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case 8004, // TiDB: transaction is too large (txn-total-size-limit)
		8025, // TiDB: entry too large (txn-entry-size-limit); one row stays too large alone
		8175, // TiDB: the statement exceeded tidb_mem_quota_query
		1197: // MySQL/MariaDB: more than max_binlog_cache_size
		return true
	}
	return false
}

// ServerRefused reports whether err is the server refusing a statement for a
// reason retrying can't change (a syntax it doesn't support, a missing table
// or column, a missing privilege): what a worker must not hand to a peer to
// try again.
func ServerRefused(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && !transient(err) && !errors.Is(err, ErrFenced)
}

// retry runs fn until it succeeds, fails for good, or transient errors
// outlast cfg.RetryFor. Backoff doubles from 100 ms to 5 s.
func (t *Target) retry(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(t.cfg.RetryFor)
	wait := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("target %s: still failing after %s: %w", t.cfg.Addr(), t.cfg.RetryFor, err)
		}
		t.retries.Add(1)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, 5*time.Second)
	}
}
