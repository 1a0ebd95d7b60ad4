package node

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"storm/import/source"
	"storm/internal/etcdserver"
	"storm/internal/gendump"
	"storm/meta"
)

// The plan's shard size: import.shard-size as set, or for "auto" the size
// for the data files of the sources this node can read and the workers of
// every node joined so far; a node-local source of another node is not
// counted.
func TestChooseShardSize(t *testing.T) {
	_, cli := etcdserver.StartT(t)
	dir := t.TempDir()
	shared, local := filepath.Join(dir, "shared"), filepath.Join(dir, "local")
	for _, d := range []string{shared, local} {
		if _, err := gendump.Generate(gendump.Options{Dir: d, DB: "shard_size", Rows: 2_000, Seed: 3, Format: "csv"}); err != nil {
			t.Fatal(err)
		}
	}
	layout, err := source.DiscoverWith(shared, nil)
	if err != nil {
		t.Fatal(err)
	}
	sharedBytes := dataBytes(layout.Tables)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cases := []struct {
		name      string
		size      meta.ShardSize
		nodes     map[string]int // joined nodes and their workers
		localNode string         // the node that holds the local source
		want      meta.JobPlan
	}{
		{name: "explicit", size: 1 << 20, nodes: map[string]int{"n1": 4},
			want: meta.JobPlan{ShardSize: 1 << 20}},
		{name: "auto, this node alone", size: meta.ShardSizeAuto, nodes: map[string]int{"n1": 4}, localNode: "n1",
			want: meta.JobPlan{ShardSizeAuto: true, AutoBytes: 2 * sharedBytes, AutoWorkers: 4, AutoNodes: 1}},
		{name: "auto, three nodes, one's local source not here", size: meta.ShardSizeAuto,
			nodes: map[string]int{"n1": 4, "n2": 2, "n3": 6}, localNode: "n3",
			want: meta.JobPlan{ShardSizeAuto: true, AutoBytes: sharedBytes, AutoWorkers: 12, AutoNodes: 3}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			job, _ := meta.NewJob("/storm", "choose-"+string(rune('a'+i)))
			for id, w := range c.nodes {
				if _, err := cli.Put(ctx, job.Node(id), meta.Encode(meta.NodeInfo{ID: id, Workers: w})); err != nil {
					t.Fatal(err)
				}
			}
			spec := meta.Spec{Job: job.ID, Source: meta.SourceSpec{Dir: shared,
				Dirs: []meta.SourceDir{{ID: "local", Dir: local, Node: c.localNode}}},
				Import: meta.ImportSpec{ShardSize: c.size, BatchSize: 4 << 20}}
			n := &Node{cfg: Config{NodeID: "n1", Workers: 4}, spec: spec, job: job, cli: cli,
				log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			var jp meta.JobPlan
			if err := n.chooseShardSize(ctx, &jp); err != nil {
				t.Fatal(err)
			}
			want := c.want
			if want.ShardSizeAuto {
				want.ShardSize = source.AutoShardSize(want.AutoBytes, want.AutoWorkers, 4<<20)
			}
			if jp.ShardSize != want.ShardSize || jp.ShardSizeAuto != want.ShardSizeAuto || jp.AutoBytes != want.AutoBytes ||
				jp.AutoWorkers != want.AutoWorkers || jp.AutoNodes != want.AutoNodes {
				t.Fatalf("job plan %+v, want %+v", jp, want)
			}
			// Every source's plan takes the job's size.
			if got := n.shardSize(jp, layout.Tables); got != want.ShardSize {
				t.Fatalf("a source's shard size %d, want the job's %d", got, want.ShardSize)
			}
		})
	}
}

// A plan marker from before the job plan held a size: a source's plan falls
// back to import.shard-size, or to the auto size over its own files and
// this node's workers.
func TestShardSizeWithoutJobPlan(t *testing.T) {
	// Only the files' sizes count: no file is read.
	tables := []source.Table{{DB: "db", Name: "t", Files: []source.DataFile{{Path: "/dump/db.t.00000.csv", Size: 100 << 20}}}}
	n := &Node{cfg: Config{Workers: 1}, spec: meta.Spec{Import: meta.ImportSpec{ShardSize: 8 << 20, BatchSize: 1 << 20}}}
	if got := n.shardSize(meta.JobPlan{}, tables); got != 8<<20 {
		t.Fatalf("explicit: %d", got)
	}
	n.spec.Import.ShardSize = meta.ShardSizeAuto
	if got, want := n.shardSize(meta.JobPlan{}, tables), source.AutoShardSize(100<<20, 1, 1<<20); got != want || got != 16<<20 {
		t.Fatalf("auto: %d, want %d", got, want)
	}
}
