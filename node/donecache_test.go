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
	read := func() *doneFold {
		t.Helper()
		st := &jobState{fold: newDoneFold()}
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
		return st.fold
	}

	// Seeded as the import view would: s1 and s2 as of rev; s3 comes later.
	seed := newDoneFold()
	seed.add(meta.Done{DB: "d", Table: "t", Rows: 1})
	seed.add(meta.Done{DB: "d", Table: "t", Rows: 2})
	n.seedDone(seed, rev)
	put("s3", 4)
	if got := read(); got.count != 3 || got.rows != 7 || fullReads != 0 {
		t.Fatalf("with the cache: %d records, %d rows, %d full reads; want 3, 7, 0", got.count, got.rows, fullReads)
	}
	if got := read(); got.count != 3 || fullReads != 0 {
		t.Fatalf("again: %d records, %d full reads", got.count, fullReads)
	}
	if _, err := cli.Delete(ctx, job.Key(meta.KindDone, "s1")); err != nil {
		t.Fatal(err)
	}
	if got := read(); got.count != 2 || got.rows != 6 || fullReads == 0 {
		t.Fatalf("after a delete: %d records, %d rows, %d full reads; want 2, 6 and a full read", got.count, got.rows, fullReads)
	}
	if n.doneCache != nil {
		t.Error("the cache outlived a count that disagreed")
	}

	// A view that saw a record deleted hands over no cache at all.
	broken := newDoneFold()
	broken.breakOff("done record s1 deleted")
	n.seedDone(broken, rev)
	if n.doneCache != nil {
		t.Error("a broken fold was kept as the cache")
	}
}

// The fold sums what the phases after the import need, record by record,
// as sumDone and digestColumns did over the whole set.
func TestDoneFold(t *testing.T) {
	cols := []string{"id", "v"}
	x1, x2 := "00000000000000ff", "000000000000ff00"
	tests := []struct {
		name     string
		done     []meta.Done
		wantRows int64
		wantXOR  string
		wantCols []string
		wantNote string
		wantBad  bool
	}{
		{name: "one column set", done: []meta.Done{
			{DB: "d", Table: "t", Rows: 2, DigestCount: 2, DigestXOR: x1, DigestColumns: cols, Node: "n1"},
			{DB: "d", Table: "t", Rows: 3, DigestCount: 3, DigestXOR: x2, DigestColumns: cols, Node: "n2"},
		}, wantRows: 5, wantXOR: "000000000000ffff", wantCols: cols},
		{name: "an empty shard names no columns", done: []meta.Done{
			{DB: "d", Table: "t", Rows: 2, DigestCount: 2, DigestXOR: x1, DigestColumns: cols},
			{DB: "d", Table: "t", Rows: 0, DigestXOR: "0000000000000000"},
		}, wantRows: 2, wantXOR: x1, wantCols: cols},
		{name: "different column sets", done: []meta.Done{
			{DB: "d", Table: "t", Rows: 1, DigestXOR: x1, DigestColumns: cols},
			{DB: "d", Table: "t", Rows: 1, DigestXOR: x1, DigestColumns: []string{"id"}},
		}, wantRows: 2, wantXOR: "0000000000000000", wantNote: "source files name different column sets"},
		{name: "mixed within a file", done: []meta.Done{
			{DB: "d", Table: "t", Rows: 1, DigestXOR: x1, DigestColumns: []string{mixedColumns}},
			{DB: "d", Table: "t", Rows: 1, DigestXOR: x2, DigestColumns: cols},
		}, wantRows: 2, wantXOR: "000000000000ffff", wantNote: "the source's column list changes within a file"},
		{name: "no columns recorded", done: []meta.Done{
			{DB: "d", Table: "t", Rows: 4, DigestXOR: x1},
		}, wantRows: 4, wantXOR: x1, wantNote: "a shard recorded no digest columns"},
		{name: "no rows", done: []meta.Done{
			{DB: "d", Table: "t", Rows: 0, DigestXOR: "0000000000000000"},
		}, wantXOR: "0000000000000000", wantNote: "no rows to hash"},
		{name: "a digest that does not parse", done: []meta.Done{
			{DB: "d", Table: "t", Rows: 1, DigestXOR: "zz", DigestColumns: cols},
		}, wantRows: 1, wantXOR: "0000000000000000", wantCols: cols, wantBad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newDoneFold()
			for _, d := range tt.done {
				f.add(d)
			}
			c := f.clone()
			f.add(meta.Done{DB: "d", Table: "t", Rows: 100, Node: "late"}) // not in the clone
			tot := c.totals()
			tab := tot.Tables["d.t"]
			if tot.Done != len(tt.done) || tot.Rows != tt.wantRows || tab.Rows != tt.wantRows || tab.DigestXOR != tt.wantXOR {
				t.Errorf("totals %+v, table %+v; want %d records, %d rows, digest %s", tot, tab, len(tt.done), tt.wantRows, tt.wantXOR)
			}
			if (tab.BadDigest != "") != tt.wantBad {
				t.Errorf("bad digest %q, want one: %v", tab.BadDigest, tt.wantBad)
			}
			gotCols, note := c.digestColumns("d", "t")
			if note != tt.wantNote || !sameColumns(gotCols, tt.wantCols) {
				t.Errorf("digest columns %v, note %q; want %v, %q", gotCols, note, tt.wantCols, tt.wantNote)
			}
			for _, id := range tot.Nodes {
				if id == "late" {
					t.Error("a record added after the clone shows in it")
				}
			}
		})
	}
}
