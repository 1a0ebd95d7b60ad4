//go:build tidb

package e2e

// Pre-split on TiDB (tidb.pre-split = auto): the plan splits each empty
// table's Regions where its shards begin, or evenly over a sharded key
// range, before any row is written.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"storm/internal/gendump"
	"storm/internal/tidbtest"
	"storm/meta"
)

// Four tables created empty before the job: a clustered integer key, a
// clustered common handle, _tidb_rowid with SHARD_ROW_ID_BITS, and
// AUTO_RANDOM. plan --dry-run shows the split each gets; the job makes that
// split (the table records and the barrier say so, with the Regions before
// and after, and SHOW TABLE ... REGIONS agrees after the import); every row
// and every digest is exact.
func TestTiDBPreSplit(t *testing.T) {
	s := tidbtest.StartT(t, tidbtest.Options{})
	e := newEnv(t, gendump.Options{DB: "tidb_split"})
	e.tgt = tidbTarget(s)
	dir := e.gen.Dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := e.db()
	mustExec(t, db, "CREATE DATABASE tidb_split")
	tables := map[string]string{
		"ci": "CREATE TABLE tidb_split.ci (id BIGINT NOT NULL, v VARCHAR(64), PRIMARY KEY (id) CLUSTERED)",
		"ch": "CREATE TABLE tidb_split.ch (a VARCHAR(16) NOT NULL, b INT NOT NULL, v VARCHAR(64), PRIMARY KEY (a, b) CLUSTERED)",
		"sr": "CREATE TABLE tidb_split.sr (a INT, v VARCHAR(64)) SHARD_ROW_ID_BITS = 3",
		"ar": "CREATE TABLE tidb_split.ar (id BIGINT NOT NULL AUTO_RANDOM(4), v VARCHAR(64), PRIMARY KEY (id) CLUSTERED)",
	}
	want := map[string][]string{}
	const rows = 4000
	for name, ddl := range tables {
		mustExec(t, db, ddl)
		for part := range 2 {
			var b strings.Builder
			b.WriteString(map[string]string{"ci": "id,v", "ch": "a,b,v", "sr": "a,v", "ar": "id,v"}[name] + "\n")
			for i := part*rows/2 + 1; i <= (part+1)*rows/2; i++ {
				var line string
				switch name {
				case "ci":
					line = fmt.Sprintf("%d,value %d", i*7, i)
				case "ch":
					line = fmt.Sprintf("k%05d,%d,value %d", i/4, i%4, i)
				case "sr":
					line = fmt.Sprintf("%d,value %d", i, i)
				case "ar":
					// Ids as TiDB makes them: the shard in the top bits.
					line = fmt.Sprintf("%d,value %d", int64(i%16)<<59|int64(i), i)
				}
				b.WriteString(line + "\n")
				want[name] = append(want[name], line)
			}
			write(fmt.Sprintf("tidb_split.%s.%05d.csv", name, part), b.String())
		}
	}
	e.gen.Header = true
	cfg := e.config(map[string]string{"verify.mode": `"digest"`, "import.shard-size": "16384"})

	// The dry run shows the split of each table.
	p := e.start("plan", "plan", "--dry-run", "--json", "--config", cfg)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("plan --dry-run exited %d:\n%s\n%s", code, p.stdout(), tail(p.log(), 20))
	}
	var dry struct {
		Tables []struct {
			Table    string         `json:"table"`
			Shards   int            `json:"shards"`
			PreSplit *meta.PreSplit `json:"pre_split"`
		} `json:"tables"`
	}
	if err := json.Unmarshal([]byte(p.stdout()), &dry); err != nil {
		t.Fatalf("dry run JSON: %v\n%s", err, p.stdout())
	}
	planned := map[string]meta.PreSplit{}
	for _, tb := range dry.Tables {
		if tb.PreSplit == nil {
			t.Fatalf("dry run: no pre-split for %s", tb.Table)
		}
		planned[tb.Table] = *tb.PreSplit
		ps := *tb.PreSplit
		switch tb.Table {
		case "ci", "ch":
			// One key per shard but the first.
			if ps.Method != meta.PreSplitFirstKeys || len(ps.By) != tb.Shards-1 || tb.Shards < 3 {
				t.Errorf("dry run %s (%d shards): %+v", tb.Table, tb.Shards, ps)
			}
		case "sr":
			if ps.Method != meta.PreSplitEven || ps.Regions != 8 {
				t.Errorf("dry run sr: %+v", ps)
			}
		case "ar":
			if ps.Method != meta.PreSplitEven || ps.Regions != 16 {
				t.Errorf("dry run ar: %+v", ps)
			}
		}
	}
	if len(planned) != 4 {
		t.Fatalf("dry run planned %d tables: %s", len(planned), p.stdout())
	}
	text := e.start("plan-text", "plan", "--dry-run", "--config", cfg)
	if code := text.wait(t, time.Minute); code != 0 || !strings.Contains(text.stdout(), "pre-split: "+fmt.Sprint(len(planned["ci"].By))+" split key(s)") {
		t.Errorf("dry run text (exit %d) lacks ci's split keys:\n%s", code, text.stdout())
	}

	n1, n2 := e.node("n1", cfg), e.node("n2", cfg)
	for _, p := range []*proc{n1, n2} {
		if code := p.wait(t, 3*time.Minute); code != 0 {
			t.Fatalf("%s exited %d\n%s", p.id, code, tail(p.log(), 30))
		}
	}
	b := e.barrier()
	checkTiDBBarrier(t, b)
	for _, ps := range b.PreSplit {
		t.Logf("%s: %s, %d key(s) %d Regions, Regions %d before %d after, scattered %v", ps.Table, ps.Method, len(ps.By), ps.Regions, ps.RegionsBefore, ps.RegionsAfter, ps.Scattered)
	}
	if len(b.PreSplit) != 4 {
		t.Fatalf("barrier pre-split %+v", b.PreSplit)
	}
	for _, ps := range b.PreSplit {
		plan := planned[ps.Table]
		if ps.Warning != "" || ps.Method != plan.Method || strings.Join(ps.By, " ") != strings.Join(plan.By, " ") || ps.Regions != plan.Regions {
			t.Errorf("%s: split %+v, planned %+v", ps.Table, ps, plan)
			continue
		}
		wantAfter := ps.RegionsBefore + len(ps.By)
		if ps.Method == meta.PreSplitEven {
			wantAfter = ps.Regions
		}
		if ps.RegionsBefore != 1 || ps.RegionsAfter != wantAfter {
			t.Errorf("%s: Regions %d before, %d after; want 1 and %d", ps.Table, ps.RegionsBefore, ps.RegionsAfter, wantAfter)
		}
		// The table's record says the same.
		key := e.job.Key(meta.KindTables, "tidb_split."+ps.Table)
		resp := e.get(key)
		var rec meta.PlanTable
		if len(resp.Kvs) != 1 || meta.Decode(key, resp.Kvs[0].Value, &rec) != nil || rec.PreSplit == nil ||
			rec.PreSplit.RegionsAfter != ps.RegionsAfter {
			t.Errorf("%s: table record %+v", ps.Table, rec)
		}
		// The import wrote into those Regions: still at least as many.
		var n int
		rs, err := db.Query("SHOW TABLE tidb_split." + ps.Table + " REGIONS")
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			n++
		}
		rs.Close()
		if n < ps.RegionsAfter {
			t.Errorf("%s: %d Regions after the import, %d after the split", ps.Table, n, ps.RegionsAfter)
		}
	}
	for name, q := range map[string]string{
		"ci": "SELECT CONCAT(id, ',', v) FROM tidb_split.ci",
		"ch": "SELECT CONCAT(a, ',', b, ',', v) FROM tidb_split.ch",
		"sr": "SELECT CONCAT(a, ',', v) FROM tidb_split.sr",
		"ar": "SELECT CONCAT(id, ',', v) FROM tidb_split.ar",
	} {
		rs, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rs.Next() {
			var s string
			if err := rs.Scan(&s); err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		}
		rs.Close()
		w := append([]string(nil), want[name]...)
		sort.Strings(got)
		sort.Strings(w)
		if strings.Join(got, "\n") != strings.Join(w, "\n") {
			t.Errorf("%s: %d rows, want %d; first got %q, want %q", name, len(got), len(w), first(got), first(w))
		}
	}
}

// tidb.pre-split = off: no table is split, the barrier records none.
func TestTiDBPreSplitOff(t *testing.T) {
	s := tidbtest.StartT(t, tidbtest.Options{})
	e := newEnv(t, gendump.Options{Rows: 6_000, Format: "csv", FilesPerTable: 2, Header: true, Tables: []string{"customers"}})
	e.tgt = tidbTarget(s)
	cfg := e.config(map[string]string{"tidb.pre-split": `"off"`, "import.shard-size": "65536"})
	n1 := e.node("n1", cfg)
	if code := n1.wait(t, 3*time.Minute); code != 0 {
		t.Fatalf("n1 exited %d\n%s", code, tail(n1.log(), 30))
	}
	b := e.barrier()
	if b == nil || b.Status != meta.StatusSucceeded || len(b.PreSplit) != 0 || b.Shards < 2 {
		t.Fatalf("barrier %+v", b)
	}
	var n int
	rs, err := e.db().Query("SHOW TABLE " + e.gen.DB + ".customers REGIONS")
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		n++
	}
	rs.Close()
	if n != 1 {
		t.Errorf("customers has %d Regions, want the one it was created with", n)
	}
	e.checkTarget()
}
