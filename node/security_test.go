package node

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storm/internal/etcdserver"
	"storm/internal/testcerts"
	"storm/internal/tlsfiles"
	"storm/meta"
)

// ConnectEtcd over TLS to a member that requires client certificates:
// the right files connect; a wrong CA, no client certificate, a missing
// file, http:// endpoints with etcd.tls, all fail at once (well within the
// start timeout) with an exit-2 error naming the endpoint and what to fix.
func TestConnectEtcdTLS(t *testing.T) {
	certs := testcerts.New(t)
	srv, _ := etcdserver.StartTLST(t, &etcdserver.TLS{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, CAFile: certs.CA,
		ClientCertAuth: true}, certs.ClientTLS(t))
	good := tlsfiles.Files{CA: certs.CA, Cert: certs.ClientCert, Key: certs.ClientKey}
	ctx := t.Context()
	start := time.Now()
	cli, err := ConnectEtcd(ctx, EtcdAccess{Endpoints: []string{srv.ClientURL}, TLS: good}, 5*time.Second)
	if err != nil {
		t.Fatalf("with the right files: %v", err)
	}
	cli.Close()
	t.Logf("connected over TLS in %s", time.Since(start))

	other := testcerts.New(t)
	plain := "http" + strings.TrimPrefix(srv.ClientURL, "https")
	cases := []struct {
		name      string
		endpoints []string
		files     tlsfiles.Files
		want      []string
	}{
		{"wrong CA", []string{srv.ClientURL}, tlsfiles.Files{CA: other.CA, Cert: certs.ClientCert, Key: certs.ClientKey},
			[]string{srv.ClientURL, "unknown authority", "not signed by etcd.tls.ca"}},
		{"no client certificate", []string{srv.ClientURL}, tlsfiles.Files{CA: certs.CA},
			[]string{srv.ClientURL, "certificate required", "set etcd.tls.cert and etcd.tls.key"}},
		{"client certificate of another CA", []string{srv.ClientURL}, tlsfiles.Files{CA: certs.CA, Cert: other.ClientCert, Key: other.ClientKey},
			[]string{srv.ClientURL, "refused our client certificate"}},
		{"missing certificate file", []string{srv.ClientURL}, tlsfiles.Files{CA: certs.CA, Cert: filepath.Join(t.TempDir(), "nope.pem"), Key: certs.ClientKey},
			[]string{"etcd.tls.cert", "nope.pem", "no such file"}},
		{"http endpoint with etcd.tls", []string{plain}, good, []string{plain, "https://"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, err := ConnectEtcd(ctx, EtcdAccess{Endpoints: c.endpoints, TLS: c.files}, 20*time.Second)
			took := time.Since(start)
			var ee *ExitError
			if !errors.As(err, &ee) || ee.Code != ExitUsage {
				t.Fatalf("error %v, want exit %d", err, ExitUsage)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			if took > 5*time.Second {
				t.Errorf("took %s to fail: retried what cannot succeed", took)
			}
		})
	}
}

// etcd authentication: the right password connects, a wrong one fails at
// once with exit 2, and the error never carries the password.
func TestConnectEtcdAuth(t *testing.T) {
	srv, cli := etcdserver.StartT(t)
	ctx := t.Context()
	const pw = "etcd-Pw-9f3k"
	if _, err := cli.UserAdd(ctx, "root", pw); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	ok, err := ConnectEtcd(ctx, EtcdAccess{Endpoints: []string{srv.ClientURL}, Username: "root", Password: pw}, 5*time.Second)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	ok.Close()
	const wrong = "wrong-Pw-77x"
	start := time.Now()
	_, err = ConnectEtcd(ctx, EtcdAccess{Endpoints: []string{srv.ClientURL}, Username: "root", Password: wrong}, 20*time.Second)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != ExitUsage || time.Since(start) > 5*time.Second {
		t.Fatalf("wrong password: %v after %s", err, time.Since(start))
	}
	if msg := err.Error(); strings.Contains(msg, wrong) || strings.Contains(msg, pw) || !strings.Contains(msg, "root@"+srv.ClientURL) {
		t.Errorf("error %q: want the user and endpoint, never a password", msg)
	}
	if _, err := ConnectEtcd(ctx, EtcdAccess{Endpoints: []string{srv.ClientURL}, Username: "root"}, time.Second); err == nil {
		t.Error("a username without a password was accepted")
	}
}

// The status endpoint over TLS with client certificates (node.status-tls
// with a CA): a client with a certificate reads /status; one without is
// refused.
func TestStatusEndpointTLS(t *testing.T) {
	certs := testcerts.New(t)
	srv, _ := etcdserver.StartT(t)
	cfg := testConfig(t, srv.ClientURL, t.TempDir(), "status-tls")
	cfg.StatusAddr = "127.0.0.1:0"
	cfg.Security.Status = tlsfiles.Files{CA: certs.CA, Cert: certs.ServerCert, Key: certs.ServerKey}
	logs := &logBuffer{}
	n := newTestNode(t, cfg, logs)
	stop, err := n.serveHTTP(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	addr := *n.metrics.addr.Load()
	get := func(tc *tls.Config) (int, string, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Second}
		resp, err := c.Get("https://" + addr + "/status")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	if code, body, err := get(certs.ClientTLS(t)); err != nil || code != 200 || !strings.Contains(body, `"job": "status-tls"`) {
		t.Errorf("with a client certificate: %d %v\n%s", code, err, body)
	}
	if _, _, err := get(&tls.Config{RootCAs: certs.Pool()}); err == nil {
		t.Error("without a client certificate: served")
	}
	if resp, err := http.Get("http://" + addr + "/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain http served /status")
		}
	}
	if !strings.Contains(logs.String(), "scheme=https") {
		t.Errorf("log does not say https:\n%s", logs.String())
	}
}

// newTestNode is a node that has joined nothing: enough to serve HTTP.
func newTestNode(t *testing.T, cfg Config, logs *logBuffer) *Node {
	t.Helper()
	job, err := meta.NewJob(cfg.Prefix, cfg.Spec.Job)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := Connect(t.Context(), cfg.Endpoints, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return &Node{cfg: cfg, spec: cfg.Spec, job: job, cli: cli, log: slog.New(slog.NewTextHandler(logs, nil))}
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The status endpoint warns unless it stays on this host.
func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:9464": true, "[::1]:9464": true, "localhost:9464": true,
		"0.0.0.0:9464": false, "[::]:9464": false, ":9464": false, "10.0.0.5:9464": false} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%s) = %v", addr, got)
		}
	}
}
