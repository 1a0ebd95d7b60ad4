package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/import/source"
	"storm/internal/gendump"
	"storm/meta"
	"storm/node"
)

// With storm's default config (import.shard-size = "auto", 4 workers, 4 MiB
// batches), a big table in one file is cut into several shards that the
// workers load side by side, instead of one shard that one worker loads
// while the others idle; the plan records the size it chose, and the dry
// run shows it.
func TestE2EAutoShardSizeSplitsBigFile(t *testing.T) {
	// About 54 MB of CSV in one file: 4 shards at the 16 MiB floor.
	e := newEnv(t, gendump.Options{Rows: 320_000, Tables: []string{"events"}, Header: true})
	cfg := e.config(map[string]string{"import.shard-size": "", "import.batch-size": "", "node.workers": ""})
	files, err := source.DiscoverWith(e.gen.Dir, nil)
	if err != nil || len(files.Tables) != 1 || len(files.Tables[0].Files) != 1 {
		t.Fatalf("dump: %+v, %v", files, err)
	}
	size := files.Tables[0].Files[0].Size
	want := source.AutoShardSize(size, 4, 4<<20)
	if size < 3*want {
		t.Fatalf("the file has %d bytes: too small for 3 shards of %d", size, want)
	}

	dry := e.start("plan", "plan", "--config", cfg, "--dry-run", "--json")
	if code := dry.wait(t, time.Minute); code != 0 {
		t.Fatalf("plan exited %d:\n%s\n%s", code, dry.stdout(), dry.log())
	}
	var d node.DryRun
	if err := json.Unmarshal([]byte(dry.stdout()), &d); err != nil {
		t.Fatalf("%v:\n%s", err, dry.stdout())
	}
	if !d.ShardSizeAuto || d.ShardSize != want || d.Shards < 3 {
		t.Fatalf("dry run: shard size %d (auto %v), %d shards; want auto %d and at least 3 shards", d.ShardSize, d.ShardSizeAuto, d.Shards, want)
	}

	n1 := e.node("n1", cfg)
	if code := n1.wait(t, 5*time.Minute); code != 0 {
		t.Fatalf("n1 exited %d", code)
	}
	e.checkTarget()

	// The plan recorded the size and what it was chosen for.
	var jp meta.JobPlan
	resp := e.get(e.job.PhaseMarker(meta.PhasePlan))
	var m meta.PhaseMarker
	if len(resp.Kvs) != 1 || json.Unmarshal(resp.Kvs[0].Value, &m) != nil || json.Unmarshal(m.Summary, &jp) != nil {
		t.Fatalf("plan marker: %v", resp.Kvs)
	}
	if !jp.ShardSizeAuto || jp.ShardSize != want || jp.AutoBytes != size || jp.AutoWorkers != 4 || jp.AutoNodes != 1 {
		t.Fatalf("job plan %+v, want auto size %d for %d bytes and 4 workers on 1 node", jp, want, size)
	}
	var sum meta.PlanSummary
	resp = e.get(e.job.PhaseMarker(meta.PlanSource(meta.MainSource)))
	if len(resp.Kvs) != 1 || json.Unmarshal(resp.Kvs[0].Value, &m) != nil || json.Unmarshal(m.Summary, &sum) != nil {
		t.Fatalf("plan-source marker: %v", resp.Kvs)
	}
	if sum.ShardSize != want || sum.Shards != int(size/want)+1 && sum.Shards != int(size/want) {
		t.Fatalf("source plan %+v: want shard size %d and %d bytes / size shards", sum, want, size)
	}
	if got := e.get(e.job.Dir(meta.KindDone), clientv3.WithPrefix(), clientv3.WithCountOnly()).Count; got != int64(sum.Shards) {
		t.Fatalf("%d shards done, want %d", got, sum.Shards)
	}

	// The shards were loaded by several workers.
	workers := map[string]bool{}
	re := regexp.MustCompile(`msg="shard done".* worker=(\d+)`)
	for _, line := range strings.Split(n1.log(), "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			workers[m[1]] = true
		}
	}
	if len(workers) < 2 {
		t.Fatalf("the %d shards were loaded by %d worker(s), want several:\n%s", sum.Shards, len(workers), tail(n1.log(), 30))
	}
	t.Logf("%d bytes in one file: %d shards of %d bytes, loaded by %d workers", size, sum.Shards, want, len(workers))
}
