package node

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"storm/internal/etcdserver"
	"storm/meta"
)

// The phases after the import take the done records from the import view's
// cache, topped up with those written since; a record deleted under the
// cache (a count that disagrees) sends readDone back to reading them all.
func TestReadDoneCache(t *testing.T) {
	ctx := context.Background()
	_, cli := etcdserver.StartT(t)
	job, _ := meta.NewJob("/storm", "donecache")
	n := &Node{cli: cli, job: job, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	put := func(name string, rows int64) int64 {
		t.Helper()
		r, err := cli.Put(ctx, job.Key(meta.KindDone, name), meta.Encode(meta.Done{DB: "d", Table: "t", Rows: rows}))
		if err != nil {
			t.Fatal(err)
		}
		return r.Header.Revision
	}
	put("s1", 1)
	rev := put("s2", 2)
	fullReads := 0
	read := func() map[string]meta.Done {
		t.Helper()
		st := &jobState{done: map[string]meta.Done{}}
		var sources []meta.PhaseMarker
		if _, err := n.readDone(ctx, st, func(kvs []*mvccpb.KeyValue) error {
			fullReads++
			for _, kv := range kvs {
				if err := st.add(job, kv, &sources); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return st.done
	}
	rows := func(m map[string]meta.Done) (sum int64) {
		for _, d := range m {
			sum += d.Rows
		}
		return sum
	}

	// Seeded as the import view would: s1 and s2 as of rev; s3 comes later.
	n.seedDone(map[string][]byte{
		"s1": []byte(`{"db":"d","table":"t","rows":1}`),
		"s2": []byte(`{"db":"d","table":"t","rows":2}`),
	}, rev)
	put("s3", 4)
	if got := read(); len(got) != 3 || rows(got) != 7 || fullReads != 0 {
		t.Fatalf("with the cache: %d records, %d rows, %d full reads; want 3, 7, 0", len(got), rows(got), fullReads)
	}
	if got := read(); len(got) != 3 || fullReads != 0 {
		t.Fatalf("again: %d records, %d full reads", len(got), fullReads)
	}
	if _, err := cli.Delete(ctx, job.Key(meta.KindDone, "s1")); err != nil {
		t.Fatal(err)
	}
	if got := read(); len(got) != 2 || rows(got) != 6 || fullReads == 0 {
		t.Fatalf("after a delete: %d records, %d rows, %d full reads; want 2, 6 and a full read", len(got), rows(got), fullReads)
	}
	if n.doneCache != nil {
		t.Error("the cache outlived a count that disagreed")
	}
}
