package e2e

// Several SQL servers (target.host as a list): two TCP proxies in front of
// one server stand for two tidb-servers of a cluster.

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"storm/internal/faultproxy"
	"storm/internal/gendump"
	"storm/meta"
)

var firstServer = regexp.MustCompile(`msg="spreading connections over SQL servers".* first=(\S+)`)

// TestSeveralSQLServers: on MariaDB (tidb_test.go runs it on TiDB).
func TestSeveralSQLServers(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 40_000, Format: "mixed", FilesPerTable: 2, Header: true})
	runSeveralSQLServers(t, e)
	if b := e.barrier(); b == nil || b.Status != meta.StatusSucceeded {
		t.Fatalf("barrier %+v", b)
	}
}

// runSeveralSQLServers imports through two proxies listed in a different
// order by each node: the nodes agree on the job, their connections go
// through both proxies, and when one proxy is cut mid-import (its open
// connections closed, new ones dropped) the other takes the rest. The job
// succeeds and every row is compared.
func runSeveralSQLServers(t *testing.T, e *env) {
	t.Helper()
	server := net.JoinHostPort("127.0.0.1", strconv.Itoa(e.tgt.port))
	var px [2]*faultproxy.Proxy
	for i := range px {
		p, err := faultproxy.Start(server)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		// A slow link keeps the import going long enough for the cut to
		// come in the middle of it, whatever the machine's speed.
		p.SetDelay(2 * time.Millisecond)
		px[i] = p
	}
	a, b := px[0].Addr(), px[1].Addr()
	cfg1 := e.config(map[string]string{"target.host": tomlStrings([]string{a, b}), "import.shard-size": "131072"})
	// target.hosts and the reverse order: the same set, the same spec.
	cfg2 := e.config(map[string]string{"target.host": fmt.Sprintf("%q", b), "target.hosts": tomlStrings([]string{a}),
		"import.shard-size": "131072"})
	n1, n2 := e.node("n1", cfg1), e.node("n2", cfg2)

	e.waitFor("shards done through both proxies", 2*time.Minute, func() bool {
		return e.count(meta.KindDone) >= 2 && px[0].Accepted() > 0 && px[1].Accepted() > 0
	})
	done, total := e.count(meta.KindDone), e.shardCount()
	if done >= total {
		t.Fatalf("the import was over (%d/%d shards) before the cut", done, total)
	}
	px[0].Block()
	cutAt := px[1].Accepted()
	t.Logf("proxy %s cut at %d/%d shards; connections so far: %d and %d", a, done, total, px[0].Accepted(), cutAt)
	for _, p := range []*proc{n1, n2} {
		if code := p.wait(t, 4*time.Minute); code != 0 {
			t.Fatalf("%s exited %d\n%s", p.id, code, tail(p.log(), 30))
		}
	}
	if px[1].Accepted() <= cutAt {
		t.Errorf("no new connection through %s after %s was cut", b, a)
	}
	// The two nodes began on different servers.
	firsts := map[string]bool{}
	for _, p := range []*proc{n1, n2} {
		m := firstServer.FindStringSubmatch(p.log())
		if m == nil {
			t.Fatalf("%s does not say which SQL server it began on:\n%s", p.id, tail(p.log(), 20))
		}
		firsts[m[1]] = true
	}
	if len(firsts) != 2 {
		t.Errorf("both nodes began on %v", firsts)
	}
	e.checkTarget()
}

// plan --dry-run checks each SQL server of the list: one that does not
// answer fails its check, naming it, while the target as a whole is
// reachable.
func TestPlanDryRunSeveralServers(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 500, Format: "csv", FilesPerTable: 1, Header: true})
	server := net.JoinHostPort("127.0.0.1", strconv.Itoa(e.tgt.port))
	var addrs []string
	var px []*faultproxy.Proxy
	for range 2 {
		p, err := faultproxy.Start(server)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		px = append(px, p)
		addrs = append(addrs, p.Addr())
	}
	px[1].Block()
	cfg := e.config(map[string]string{"target.host": tomlStrings(addrs)})
	p := e.start("plan", "plan", "--dry-run", "--config", cfg)
	if code := p.wait(t, time.Minute); code != 1 {
		t.Fatalf("plan --dry-run exited %d, want 1:\n%s", code, p.stdout())
	}
	out := p.stdout()
	for _, want := range []string{"ok   target reachable", "ok   SQL server " + addrs[0] + ": answers", "FAIL SQL server " + addrs[1]} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
}
