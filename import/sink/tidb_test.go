//go:build tidb

package sink

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"storm/internal/tidbtest"
)

// The sink's tests again, on the real TiDB SQL layer, in both of TiDB's
// transaction modes: the fence is an UPDATE ... WHERE epoch = ? that a
// pessimistic transaction locks at once and an optimistic one checks at
// commit; either way a stale owner must commit nothing.
func TestTiDBSink(t *testing.T) {
	for _, txnMode := range []string{"pessimistic", "optimistic"} {
		t.Run(txnMode, func(t *testing.T) {
			s := tidbtest.StartT(t, tidbtest.Options{TxnMode: txnMode})
			prev := server
			server = func() Config { return Config{Host: s.Host, Port: s.Port, User: s.User, Password: s.Password} }
			defer func() { server = prev }()
			tg := openTarget(t, "auto", "error")
			if !tg.IsTiDB() || !tg.UsesLoadData() {
				t.Fatalf("TiDB %q not recognised (TiDB %v, LOAD DATA %v)", tg.Version(), tg.IsTiDB(), tg.UsesLoadData())
			}
			var mode string
			if err := tg.DB().QueryRow("SELECT @@tidb_txn_mode").Scan(&mode); err != nil || mode != txnMode {
				t.Fatalf("tidb_txn_mode %q (%v), want %s", mode, err, txnMode)
			}
			for name, test := range map[string]func(*testing.T){
				"WriteRoundTrip":         TestWriteRoundTrip,
				"Fence":                  TestFence,
				"RetryAfterLandedCommit": TestRetryAfterLandedCommit,
				"RefusedRows":            TestRefusedRows,
				"MaxErrors":              TestMaxErrors,
				"LandedWithRejectedRows": TestRetryAfterLandedCommitWithRejectedRows,
				"CharsetConversion":      TestCharsetConversion,
				"SeveralServers":         TestSeveralServers,
			} {
				t.Run(name, test)
			}
		})
	}
}

// A batch over TiDB's txn-total-size-limit is split into transactions
// that fit, each fenced and checkpointed at its last row; every row goes
// in once and the checkpoint ends where the batch does.
func TestTiDBSplitsTooLargeBatches(t *testing.T) {
	s := tidbtest.StartT(t, tidbtest.Options{Config: "[performance]\ntxn-total-size-limit = 262144\n"})
	prev := server
	server = func() Config { return Config{Host: s.Host, Port: s.Port, User: s.User, Password: s.Password} }
	defer func() { server = prev }()
	for _, mode := range []string{"load", "insert"} {
		t.Run(mode, func(t *testing.T) {
			tg := openTarget(t, mode, "error")
			ref := newTable(t, tg, "(id INT PRIMARY KEY, pad VARCHAR(200))")
			shard := "split-" + mode
			cp, err := tg.Acquire(t.Context(), "job", shard, 1)
			if err != nil {
				t.Fatal(err)
			}
			const rows = 8000 // about 1.6 MB: six times the limit
			w := tg.NewWriter("job", shard, "big.csv", ref, nil)
			var xor uint64
			for i := 1; i <= rows; i++ {
				r := row(int64(i), str(fmt.Sprint(i)), str(strings.Repeat("x", 180)))
				r.End, r.NextLine = int64(i*200), int64(i+1)
				w.Add(r, uint64(i)*0x9e3779b97f4a7c15)
				xor ^= uint64(i) * 0x9e3779b97f4a7c15
			}
			to := cp
			to.NextOffset, to.NextLine, to.Finished = rows*200, rows+1, true
			res, err := w.Flush(t.Context(), cp, to)
			if err != nil {
				t.Fatal(err)
			}
			if res.Parts < 4 || res.Rows != rows {
				t.Errorf("result %+v: want the batch split into several transactions", res)
			}
			var n int
			if err := tg.DB().QueryRow("SELECT COUNT(DISTINCT id) FROM " + ref.Quoted()).Scan(&n); err != nil || n != rows {
				t.Fatalf("%d distinct rows, %v; want %d", n, err, rows)
			}
			got, err := tg.Acquire(t.Context(), "job", shard, 2)
			if err != nil {
				t.Fatal(err)
			}
			if got.NextOffset != rows*200 || got.NextLine != rows+1 || got.Rows != rows || !got.Finished ||
				got.DigestCount != rows || got.DigestXOR != xor {
				t.Errorf("checkpoint %+v", got)
			}
		})
	}
	t.Run("one row too large", func(t *testing.T) {
		tg := openTarget(t, "insert", "error")
		ref := newTable(t, tg, "(id INT PRIMARY KEY, pad LONGTEXT)")
		cp, err := tg.Acquire(t.Context(), "job", "huge", 1)
		if err != nil {
			t.Fatal(err)
		}
		w := tg.NewWriter("job", "huge", "huge.csv", ref, nil)
		w.Add(row(7, str("1"), str(strings.Repeat("y", 400_000))), 0)
		to := cp
		to.NextOffset, to.Rows = 10, 1
		_, err = w.Flush(t.Context(), cp, to)
		var re *RowError
		if !errors.As(err, &re) || re.Line != 7 || re.File != "huge.csv" {
			t.Fatalf("flush: %v, want a RowError for huge.csv:7", err)
		}
	})
}
