package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/internal/etcdserver"
	"storm/internal/gendump"
	"storm/internal/testcerts"
	"storm/meta"
)

// secret is the target password of TestE2ESecretNeverLeaks: distinctive,
// so that finding it anywhere is a leak.
const secret = "Pw-s3cr3t-XYZ"

// The target password, given by target.password-file, reaches no etcd key
// or value (the spec included), no log line (at debug), neither storm
// status nor storm status --json nor storm job list --json nor storm wait,
// and neither /status nor /metrics (served over TLS, node.status-tls). A
// node that can't connect (a wrong port) names the address, not the
// password, whether it came from the file or STORM_TARGET_PASSWORD.
func TestE2ESecretNeverLeaks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := testDB.CreateUser(ctx, "storm_secret", secret, ""); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, gendump.Options{Rows: 8_000, Format: "csv", Header: true, FilesPerTable: 2})
	pwFile := filepath.Join(e.dir, "target.pw")
	if err := os.WriteFile(pwFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	certs := testcerts.New(t)
	port, err := etcdserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	statusAddr := fmt.Sprintf("127.0.0.1:%d", port)
	e.extra["target.user"] = `"storm_secret"`
	e.extra["target.password"] = `""`
	e.extra["target.password-file"] = q(pwFile)
	e.extra["log.level"] = `"debug"`
	cfg := e.config(map[string]string{"node.workers": "1", "node.status-addr": q(statusAddr),
		"node.status-tls.cert": q(certs.ServerCert), "node.status-tls.key": q(certs.ServerKey)})

	var seen []string // everything a user or operator can see
	look := func(what, s string) {
		t.Helper()
		seen = append(seen, what)
		if strings.Contains(s, secret) {
			t.Errorf("the password is in %s:\n%s", what, s)
		}
	}

	w := e.start("wait", "wait", "--config", cfg)
	n1 := e.node("n1", cfg)
	// Hold a shard on a lease of the test's so that the node stays in its
	// import while the test reads what it serves.
	lease, err := e.etcd.Grant(t.Context(), 60)
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("a shard the test can hold", 60*time.Second, func() bool {
		resp, err := e.etcd.Get(t.Context(), e.job.Dir(meta.KindShards), clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		for i := len(resp.Kvs) - 1; i >= 0; i-- {
			k, _ := e.job.Parse(string(resp.Kvs[i].Key))
			if _, ok, err := meta.ClaimShard(t.Context(), e.etcd, e.job, k.Name, "test-holder", lease.ID); err == nil && ok {
				return true
			}
		}
		return false
	})
	e.waitFor("every other shard done", 60*time.Second, func() bool {
		st := e.readStatus()
		return st.Shards > 1 && st.Done == st.Shards-1 && len(st.Nodes) == 1
	})

	https := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool()}}}
	for _, path := range []string{"/status", "/metrics"} {
		resp, err := https.Get("https://" + statusAddr + path)
		if err != nil {
			t.Fatalf("GET %s over TLS: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(body) == 0 {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		look(path, string(body))
	}
	for _, args := range [][]string{{"status"}, {"status", "--json"}, {"job", "list", "--json"}, {"job", "show", "--json"}} {
		code, out := e.run(strings.Join(args, "-"), append(args, "--config", cfg)...)
		if code != 0 {
			t.Fatalf("storm %s exited %d", strings.Join(args, " "), code)
		}
		look("storm "+strings.Join(args, " "), out)
	}
	look("etcd while running", allKeys(t, e.etcd))

	if _, err := e.etcd.Revoke(t.Context(), lease.ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*proc{n1, w} {
		if code := p.wait(t, time.Minute); code != 0 {
			t.Fatalf("%s exited %d:\n%s", p.id, code, tail(p.log(), 10))
		}
	}
	if b := e.barrier(); b == nil || b.Status != meta.StatusSucceeded {
		t.Fatalf("barrier %+v", b)
	}
	e.checkTarget()
	look("storm wait's output", w.stdout()+w.log())
	look("n1's output", n1.stdout())
	look("n1's log", n1.log())
	look("every etcd key and value", allKeys(t, e.etcd))

	// The spec has the target, not its password.
	resp, err := e.etcd.Get(t.Context(), e.job.Spec())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("spec: %v", err)
	}
	var spec map[string]any
	if err := json.Unmarshal(resp.Kvs[0].Value, &spec); err != nil {
		t.Fatal(err)
	}
	if tg, _ := spec["target"].(map[string]any); tg["user"] != "storm_secret" || len(tg) == 0 {
		t.Errorf("spec's target %v", tg)
	} else if _, ok := tg["password"]; ok || strings.Contains(strings.ToLower(string(resp.Kvs[0].Value)), "password") {
		t.Errorf("the spec has a password field: %s", resp.Kvs[0].Value)
	}

	// A connection that fails names the address, never the password: from
	// the file, and from STORM_TARGET_PASSWORD.
	dead, err := etcdserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := fmt.Sprintf("127.0.0.1:%d", dead)
	e.extra["node.start-timeout"] = `"1s"`
	e.extra["target.port"] = fmt.Sprint(dead)
	e.job, _ = meta.NewJob("/storm", e.job.ID+"-dead") // a job of its own: the spec differs
	e.extra["job.id"] = q(e.job.ID)
	for _, via := range []string{"file", "env"} {
		overrides := map[string]string{}
		if via == "env" {
			t.Setenv("STORM_TARGET_PASSWORD", secret)
			overrides["target.password-file"] = `""`
		}
		p := e.node("dead-"+via, e.config(overrides))
		if code := p.wait(t, 30*time.Second); code != 2 {
			t.Errorf("a node on a dead port (%s) exited %d", via, code)
		}
		if log := p.log(); !strings.Contains(log, deadAddr) {
			t.Errorf("the error (%s) does not name %s:\n%s", via, deadAddr, tail(log, 5))
		}
		look("the error of a node on a dead port, password by "+via, p.log()+p.stdout())
	}
	t.Logf("looked for the password in: %s", strings.Join(seen, "; "))
}
