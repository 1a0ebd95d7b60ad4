package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/import_sstpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/internal/etcdserver"
	"storm/internal/gendump"
	"storm/internal/mariadbtest"
	"storm/internal/testcerts"
	"storm/internal/tikvfake"
	"storm/meta"
)

// q is a TOML string.
func q(s string) string { return fmt.Sprintf("%q", s) }

// tlsKeys are the overrides of one *.tls table.
func tlsKeys(table, ca, cert, key string) map[string]string {
	m := map[string]string{}
	for k, v := range map[string]string{"ca": ca, "cert": cert, "key": key} {
		if v != "" {
			m[table+"."+k] = q(v)
		}
	}
	return m
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// failsFast runs a node with overrides, in a job of its own, that must
// exit 2 within the start timeout (5 s, so a retry loop would show), saying
// each of wants.
func (e *env) failsFast(id string, overrides map[string]string, wants ...string) string {
	e.t.Helper()
	cfg := e.config(merge(overrides, map[string]string{"job.id": q(e.job.ID + "-" + id), "node.start-timeout": `"5s"`}))
	start := time.Now()
	p := e.node(id, cfg)
	code := p.wait(e.t, 30*time.Second)
	took := time.Since(start)
	log := p.log()
	if code != 2 {
		e.t.Errorf("%s exited %d, want 2:\n%s", id, code, tail(log, 10))
	}
	if took > 5*time.Second {
		e.t.Errorf("%s took %s to fail: more than the start timeout", id, took)
	}
	for _, w := range wants {
		if !strings.Contains(log, w) {
			e.t.Errorf("%s's error does not say %q:\n%s", id, w, tail(log, 5))
		}
	}
	e.t.Logf("%s exited %d after %s: %s", id, code, took.Round(time.Millisecond), strings.TrimSpace(tail(strings.TrimSpace(log), 1)))
	return log
}

// A job over etcd serving TLS with client-certificate auth: two nodes,
// `storm wait` and `storm status` all connect with etcd.tls and the job
// succeeds. Wrong CA, no client certificate or a missing file make a node
// (and storm status) exit 2 at once, naming the endpoint or the setting.
func TestE2ETLSEtcd(t *testing.T) {
	certs := testcerts.New(t)
	srv, cli := etcdserver.StartTLST(t, &etcdserver.TLS{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, CAFile: certs.CA,
		ClientCertAuth: true}, certs.ClientTLS(t))
	e := newEnvOn(t, gendump.Options{Rows: 6_000, Format: "mixed", Header: true}, []string{srv.ClientURL}, cli)
	good := tlsKeys("etcd.tls", certs.CA, certs.ClientCert, certs.ClientKey)
	cfg := e.config(good)
	w := e.start("wait", "wait", "--config", cfg)
	n1, n2 := e.node("n1", cfg), e.node("n2", cfg)
	for _, p := range []*proc{n1, n2, w} {
		if code := p.wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("%s exited %d:\n%s", p.id, code, tail(p.log(), 10))
		}
	}
	if b := e.barrier(); b == nil || b.Status != meta.StatusSucceeded {
		t.Fatalf("barrier %+v", b)
	}
	if st := e.statusJSON(cfg); st.State != "succeeded" {
		t.Errorf("status over TLS: %+v", st)
	}
	e.checkTarget()

	other := testcerts.New(t)
	e.failsFast("wrong-ca", tlsKeys("etcd.tls", other.CA, certs.ClientCert, certs.ClientKey),
		srv.ClientURL, "not signed by etcd.tls.ca")
	e.failsFast("no-cert", tlsKeys("etcd.tls", certs.CA, "", ""),
		srv.ClientURL, "requires a client certificate")
	e.failsFast("missing-file", tlsKeys("etcd.tls", certs.CA, filepath.Join(e.dir, "gone.pem"), certs.ClientKey),
		"etcd.tls.cert", "gone.pem")
	plain := "http" + strings.TrimPrefix(srv.ClientURL, "https")
	e.failsFast("plain-endpoint", merge(good, map[string]string{"etcd.endpoints": tomlStrings([]string{plain})}),
		plain, "https://")
	st := e.start("status-wrong-ca", "status", "--config", e.config(tlsKeys("etcd.tls", other.CA, certs.ClientCert, certs.ClientKey)))
	if code := st.wait(t, 10*time.Second); code != 2 || !strings.Contains(st.log(), srv.ClientURL) {
		t.Errorf("storm status with a wrong CA exited %d:\n%s", code, st.log())
	}
}

// A node with --embed-etcd serves etcd over TLS with client-certificate
// auth (its etcd.tls cert as the server's, the CA for its clients), and a
// second node joins over TLS; a node without a client certificate can't.
func TestE2ETLSEmbeddedEtcd(t *testing.T) {
	certs := testcerts.New(t)
	cp, err := etcdserver.FreeClientPort()
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("https://127.0.0.1:%d", cp)
	e := newEnvOn(t, gendump.Options{Rows: 6_000, Format: "mixed", Header: false}, []string{url}, nil)
	// The member's certificate is the node's client certificate too: it
	// names 127.0.0.1 and may be used by servers and clients.
	cfg := e.config(merge(tlsKeys("etcd.tls", certs.CA, certs.ServerCert, certs.ServerKey),
		map[string]string{"etcd.embed-dir": q(filepath.Join(e.dir, "etcd")), "node.start-timeout": `"30s"`}))
	n1 := e.node("n1", cfg, "--embed-etcd")
	// On a loaded machine the member can take seconds to start: n2 joins
	// once it serves.
	e.waitFor("the embedded etcd", 60*time.Second, func() bool {
		select {
		case <-n1.done:
			t.Fatalf("n1 exited %d before serving etcd:\n%s", n1.code, tail(n1.log(), 10))
		default:
		}
		return strings.Contains(n1.log(), "embedded etcd serving")
	})
	n2 := e.node("n2", cfg)
	bad := e.start("no-cert", "node", "--config", e.config(merge(tlsKeys("etcd.tls", certs.CA, "", ""),
		map[string]string{"node.start-timeout": `"5s"`})), "--node-id", "no-cert")
	for _, p := range []*proc{n1, n2} {
		if code := p.wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("%s exited %d:\n%s", p.id, code, tail(p.log(), 10))
		}
	}
	if !strings.Contains(n2.stdout(), "succeeded") {
		t.Fatalf("n2 printed %q", n2.stdout())
	}
	if !strings.Contains(n1.log(), "client_url="+url) {
		t.Errorf("n1 does not say it serves %s:\n%s", url, tail(n1.log(), 10))
	}
	if code := bad.wait(t, 30*time.Second); code != 2 || !strings.Contains(bad.log(), "requires a client certificate") {
		t.Errorf("a node without a client certificate exited %d:\n%s", code, tail(bad.log(), 5))
	}
	e.checkTarget()
}

// tlsTarget is a private MariaDB serving TLS with the test certificates,
// with a REQUIRE SSL and a REQUIRE X509 user.
func tlsTarget(t *testing.T, certs *testcerts.Set) *mariadbtest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := mariadbtest.StartWith(ctx, t.TempDir(), mariadbtest.Options{TLS: &mariadbtest.TLSFiles{
		CA: certs.CA, Cert: certs.ServerCert, Key: certs.ServerKey}})
	if err != nil {
		t.Fatalf("start MariaDB with TLS: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// MariaDB with TLS required for the import user: target.tls.mode=required
// (REQUIRE SSL) and verify-identity with the CA and a client certificate
// (REQUIRE X509) succeed, the verify phase reading every row back over TLS.
// disabled, a wrong CA, a missing client certificate make the node exit 2
// at once with a message naming the target address.
func TestE2ETLSTarget(t *testing.T) {
	certs := testcerts.New(t)
	db := tlsTarget(t, certs)
	addr := fmt.Sprintf("127.0.0.1:%d", db.Port)
	target := func(user string) map[string]string {
		return map[string]string{"target.port": fmt.Sprint(db.Port), "target.user": q(user), "target.password": q(db.Password)}
	}
	succeeds := func(t *testing.T, overrides map[string]string) {
		e := newEnv(t, gendump.Options{Rows: 3_000, Format: "mixed", Header: true})
		if code := e.node("n1", e.config(overrides)).wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("n1 exited %d", code)
		}
		b := e.barrier()
		if b == nil || b.Status != meta.StatusSucceeded || b.Rows == 0 {
			t.Fatalf("barrier %+v", b)
		}
		for _, r := range b.Tables {
			if !r.OK || r.Actual != r.Expected {
				t.Errorf("table %+v", r)
			}
		}
	}
	t.Run("required", func(t *testing.T) {
		succeeds(t, merge(target(db.SSLUser), map[string]string{"target.tls.mode": `"required"`}))
	})
	t.Run("verify-identity", func(t *testing.T) {
		succeeds(t, merge(target(db.X509User), map[string]string{"target.tls.mode": `"verify-identity"`},
			tlsKeys("target.tls", certs.CA, certs.ClientCert, certs.ClientKey)))
	})
	// Every connection of a job over TLS with client certificates: etcd,
	// the target (verify-identity, a REQUIRE X509 user), PD's gRPC and HTTP
	// API and the TiKV stores (tidb.tls; the PD address without a scheme),
	// and the node's status endpoint.
	t.Run("everywhere", func(t *testing.T) {
		srv, cli := etcdserver.StartTLST(t, &etcdserver.TLS{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, CAFile: certs.CA,
			ClientCertAuth: true}, certs.ClientTLS(t))
		c := tikvfake.StartCluster(t, tikvfake.ClusterConfig{
			Stores:     []tikvfake.StoreSpec{{ID: 1}, {ID: 2}},
			Schedulers: slices.Clone(balanceSchedulers),
			SharedPort: true,
			TLS:        certs.ServerTLS(t),
		})
		e := newEnvOn(t, gendump.Options{Rows: 3_000, Format: "mixed", Header: true}, []string{srv.ClientURL}, cli)
		client := func(table string) map[string]string {
			return tlsKeys(table, certs.CA, certs.ClientCert, certs.ClientKey)
		}
		cfg := e.config(merge(target(db.X509User), map[string]string{"target.tls.mode": `"verify-identity"`},
			client("etcd.tls"), client("target.tls"), client("tidb.tls"),
			map[string]string{"tidb.pd-addrs": tomlStrings([]string{strings.TrimPrefix(c.PD.URL, "https://")}),
				"node.status-addr": `"127.0.0.1:0"`, "node.status-tls.cert": q(certs.ServerCert),
				"node.status-tls.key": q(certs.ServerKey), "node.status-tls.ca": q(certs.CA)}))
		n1, n2 := e.node("n1", cfg), e.node("n2", cfg)
		for _, p := range []*proc{n1, n2} {
			if code := p.wait(t, 2*time.Minute); code != 0 {
				t.Fatalf("%s exited %d:\n%s", p.id, code, tail(p.log(), 10))
			}
		}
		b := e.barrier()
		if b == nil || b.Status != meta.StatusSucceeded || !strings.HasPrefix(b.TiKV, "restored: 2 TiKV store(s) to normal mode") {
			t.Fatalf("barrier %+v", b)
		}
		for id, modes := range c.Modes() {
			if len(modes) < 2 || modes[0] != import_sstpb.SwitchMode_Import || modes[len(modes)-1] != import_sstpb.SwitchMode_Normal {
				t.Errorf("store %d: modes %v", id, modes)
			}
		}
		paused, _, _ := c.HTTP.State()
		for name, delay := range paused {
			if delay != 0 {
				t.Errorf("scheduler %s left paused (%d s)", name, delay)
			}
		}
		if len(paused) != len(balanceSchedulers) || c.PD.Called()["GetAllStores"] != 1 {
			t.Errorf("schedulers %v; PD's gRPC GetAllStores called %d times", paused, c.PD.Called()["GetAllStores"])
		}
		for _, r := range c.HTTP.Requests() {
			if !strings.HasPrefix(r.UserAgent, "storm/n") {
				t.Errorf("PD request %s from %q", r, r.UserAgent)
			}
		}
		for _, p := range []*proc{n1, n2} {
			if !strings.Contains(p.log(), "scheme=https") {
				t.Errorf("%s did not serve its status endpoint over https", p.id)
			}
		}
	})
	t.Run("refused", func(t *testing.T) {
		e := newEnv(t, gendump.Options{Rows: 100, Format: "csv", Header: true})
		e.failsFast("disabled", merge(target(db.SSLUser), map[string]string{"target.tls.mode": `"disabled"`}),
			addr, "Access denied", "target.tls.mode is disabled")
		other := testcerts.New(t)
		e.failsFast("wrong-ca", merge(target(db.SSLUser), map[string]string{"target.tls.mode": `"verify-identity"`},
			tlsKeys("target.tls", other.CA, "", "")), addr, "not signed by target.tls.ca")
		e.failsFast("no-client-cert", merge(target(db.X509User), map[string]string{"target.tls.mode": `"required"`},
			tlsKeys("target.tls", certs.CA, "", "")), addr, "Access denied")
		e.failsFast("missing-file", merge(target(db.X509User), tlsKeys("target.tls", certs.CA,
			filepath.Join(e.dir, "gone.pem"), certs.ClientKey)), "target.tls.cert", "gone.pem")
		// The plain-text server of the other tests does not offer TLS.
		e.failsFast("no-tls-server", map[string]string{"target.tls.mode": `"required"`},
			fmt.Sprintf("127.0.0.1:%d", testDB.Port), "does not offer TLS")
	})
}

// allKeys is every key and value in etcd.
func allKeys(t *testing.T, cli *clientv3.Client) string {
	t.Helper()
	resp, err := cli.Get(t.Context(), "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, kv := range resp.Kvs {
		fmt.Fprintf(&b, "%s=%s\n", kv.Key, kv.Value)
	}
	return b.String()
}
