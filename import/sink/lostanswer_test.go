package sink

import (
	"testing"
)

// A batch that had rows rejected (within import.max-errors) commits, and its
// answer is lost (the connection drops, the server restarts): the retry finds
// the batch committed and must report what was committed, the rejected rows
// left out of rows and digest, or the owner's next batch no longer matches
// the checkpoint and is refused as if another node owned the shard.
func TestRetryAfterLandedCommitWithRejectedRows(t *testing.T) {
	tg := openTarget(t, "load", "error")
	tg.cfg.MaxErrors = 5
	ref := newTable(t, tg, "(id INT PRIMARY KEY, v VARCHAR(3))")
	cp, err := tg.Acquire(t.Context(), "lost-answer", "s", 1)
	if err != nil {
		t.Fatal(err)
	}
	to := cp
	to.NextOffset = 50
	var res Result
	for try := 0; try < 2; try++ { // the second try is the retry of a lost answer
		w := tg.NewWriter("lost-answer", "s", "f.csv", ref, nil)
		w.Add(row(1, str("1"), str("ok")), 0x10)
		w.Add(row(2, str("2"), str("toolong")), 0x20)
		w.Add(row(3, str("3"), str("ok")), 0x40)
		if res, err = w.Flush(t.Context(), cp, to); err != nil {
			t.Fatalf("try %d: %v", try, err)
		}
		if res.Checkpoint.Rows != 2 || res.Checkpoint.DigestXOR != 0x50 {
			t.Fatalf("try %d: checkpoint %+v, want 2 rows, digest 0x50", try, res.Checkpoint)
		}
	}
	next := res.Checkpoint
	next.NextOffset, next.Finished = 80, true
	w := tg.NewWriter("lost-answer", "s", "f.csv", ref, nil)
	w.Add(row(4, str("4"), str("ok")), 0x80)
	if _, err := w.Flush(t.Context(), res.Checkpoint, next); err != nil {
		t.Fatalf("the batch after the retried one: %v", err)
	}
	if got := dump(t, tg.DB(), ref); len(got) != 3 {
		t.Fatalf("rows %v", got)
	}
}
