package etcdserver

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/internal/testcerts"
)

// A member serving TLS with client-certificate auth answers a client with
// a certificate signed by its CA, and refuses one without a certificate and
// one that does not trust its CA.
func TestTLSClientCertAuth(t *testing.T) {
	certs := testcerts.New(t)
	srv, cli := StartTLST(t, &TLS{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, CAFile: certs.CA, ClientCertAuth: true},
		certs.ClientTLS(t))
	if !strings.HasPrefix(srv.ClientURL, "https://") {
		t.Fatalf("client url %s", srv.ClientURL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put with a client certificate: %v", err)
	}
	other := testcerts.New(t)
	for name, tc := range map[string]*tls.Config{
		"no client certificate": {RootCAs: certs.Pool()},
		"another CA":            other.ClientTLS(t),
	} {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.ClientURL}, DialTimeout: 500 * time.Millisecond, TLS: tc})
		if err != nil {
			t.Fatal(err)
		}
		gctx, gcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err = c.Get(gctx, "k")
		gcancel()
		c.Close()
		if err == nil {
			t.Errorf("%s: the member answered", name)
		}
	}
	if _, err := Start(ctx, Config{Dir: t.TempDir(), ClientURL: "http://127.0.0.1:1", PeerURL: "http://127.0.0.1:2",
		TLS: &TLS{CertFile: certs.ServerCert, KeyFile: certs.ServerKey}}); err == nil || !strings.Contains(err.Error(), "https://") {
		t.Errorf("TLS on http:// URLs: %v", err)
	}
	if p, err := PeerURLFor("https://127.0.0.1:2379"); err != nil || p != "https://127.0.0.1:2380" {
		t.Errorf("PeerURLFor(https) = %s, %v", p, err)
	}
}
