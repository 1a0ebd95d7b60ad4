package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/internal/etcdserver"
	"storm/internal/gendump"
	"storm/jobctl"
	"storm/meta"
)

// Two in-process nodes (under the race detector in `make test`) serve
// /metrics from registries of their own and /status, while the test holds
// one shard on a lease of its own so that both stay in their import.
func TestNodesServeMetrics(t *testing.T) {
	srv, cli := etcdserver.StartT(t)
	gen := gendump.Options{Dir: filepath.Join(t.TempDir(), "dump"), DB: "node_metrics", Rows: 6_000, Seed: 3, Format: "csv", FilesPerTable: 2, Header: true}
	if _, err := gendump.Generate(gen); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	job, _ := meta.NewJob("/storm", "metrics")

	const nodes = 2
	codes := make([]int, nodes)
	errs := make([]error, nodes)
	logs := make([]*logBuffer, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		cfg := testConfig(t, srv.ClientURL, gen.Dir, job.ID)
		cfg.NodeID = fmt.Sprintf("n%d", i)
		cfg.StatusAddr = "127.0.0.1:0"
		logs[i] = &logBuffer{}
		cfg.Log = slog.New(slog.NewTextHandler(logs[i], nil))
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], errs[i] = Run(ctx, cfg)
		}()
	}

	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	held := ""
	for deadline := time.Now().Add(time.Minute); held == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		resp, err := cli.Get(ctx, job.Dir(meta.KindShards), clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		for i := len(resp.Kvs) - 1; i >= 0 && held == ""; i-- {
			k, _ := job.Parse(string(resp.Kvs[i].Key))
			if _, ok, err := meta.ClaimShard(ctx, cli, job, k.Name, "test-holder", lease.ID); err == nil && ok {
				held = k.Name
			}
		}
	}
	if held == "" {
		t.Fatal("could not hold a shard")
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		st, err := jobctl.ReadStatus(ctx, cli, job)
		if err != nil {
			t.Fatal(err)
		}
		if st.Shards > 1 && st.Done == st.Shards-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("other shards not done: %+v", st)
		}
	}

	addrRe := regexp.MustCompile(`serving /metrics.* addr=(\S+)`)
	for i := range nodes {
		m := addrRe.FindStringSubmatch(logText(logs[i]))
		if m == nil {
			t.Fatalf("n%d logged no address:\n%s", i, logText(logs[i]))
		}
		page := httpGet(t, "http://"+m[1]+"/metrics")
		for _, want := range []string{
			fmt.Sprintf(`storm_node_info{storm_job="metrics",storm_node="n%d"} 1`, i),
			`storm_phase{phase="import"} 1`,
			`storm_etcd_request_duration_seconds_bucket{op="claim",le="+Inf"}`,
			`storm_shards{state="failed"} 0`,
			`storm_shards{state="in_work"} `,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("n%d /metrics lacks %s", i, want)
			}
		}
		var st jobctl.Status
		if err := json.Unmarshal([]byte(httpGet(t, "http://"+m[1]+"/status")), &st); err != nil {
			t.Fatal(err)
		}
		// Source bytes written: some, and no more than the node's shards hold.
		mine := int64(0)
		for _, n := range st.Nodes {
			if n.ID == fmt.Sprintf("n%d", i) {
				mine = n.RowsDone
			}
		}
		bm := regexp.MustCompile(`(?m)^storm_bytes_written_total (\S+)$`).FindStringSubmatch(page)
		rm := regexp.MustCompile(`(?m)^storm_rows_written_total (\S+)$`).FindStringSubmatch(page)
		if bm == nil || rm == nil {
			t.Fatalf("n%d: no bytes or rows written in /metrics", i)
		}
		var bytesW, rowsW float64
		fmt.Sscan(bm[1], &bytesW)
		fmt.Sscan(rm[1], &rowsW)
		if bytesW > float64(st.Total) || (rowsW > 0) != (bytesW > 0) || rowsW != float64(mine) {
			t.Errorf("n%d: %v bytes, %v rows written; the job has %d bytes, the node finished %d rows", i, bytesW, rowsW, st.Total, mine)
		}
		if st.Job != job.ID || st.Owners["test-holder"] != 1 || len(st.Nodes) != nodes {
			t.Errorf("n%d /status %+v", i, st)
		}
	}

	if _, err := cli.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i := range codes {
		if codes[i] != ExitOK || errs[i] != nil {
			t.Errorf("n%d: exit %d, %v\n%s", i, codes[i], errs[i], logText(logs[i]))
		}
	}
	checkCounts(t, gen)
}

func logText(l *logBuffer) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s: %s %v", url, resp.Status, err)
	}
	return string(b)
}
