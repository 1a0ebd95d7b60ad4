package tlsfiles

import (
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storm/internal/testcerts"
)

// serve accepts TLS connections with cfg and answers each with "ok".
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.(*tls.Conn).Handshake() == nil {
					_, _ = io.WriteString(c, "ok")
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// ChainOnly accepts a certificate the CA signed whatever name it was
// dialed by, and refuses one another CA signed. Probe gives a verdict only
// on certificate trouble, with a hint naming the setting.
func TestChainOnlyAndProbe(t *testing.T) {
	certs, other := testcerts.New(t), testcerts.New(t)
	addr := serve(t, certs.ServerTLS(t))
	_, port, _ := net.SplitHostPort(addr)

	files := Files{CA: certs.CA, Cert: certs.ClientCert, Key: certs.ClientKey}
	c, err := files.Client("x.tls")
	if err != nil {
		t.Fatal(err)
	}
	wrongName := c.Clone()
	wrongName.ServerName = "db.elsewhere"
	if err := Probe(addr, wrongName, nil, time.Second); err == nil || !strings.Contains(Hint(err, "x.tls"), "does not name") {
		t.Errorf("full verification with a wrong name: %v", err)
	}
	if err := Probe(addr, ChainOnly(wrongName), nil, time.Second); err != nil {
		t.Errorf("chain-only with a wrong name: %v", err)
	}
	oc, _ := Files{CA: other.CA, Cert: certs.ClientCert, Key: certs.ClientKey}.Client("x.tls")
	err = Probe(addr, ChainOnly(oc), nil, time.Second)
	if !IsCertError(err) || !strings.Contains(Hint(err, "x.tls"), "not signed by x.tls.ca") {
		t.Errorf("chain-only with another CA: %v (%s)", err, Hint(err, "x.tls"))
	}
	noCert, _ := Files{CA: certs.CA}.Client("x.tls")
	err = Probe(addr, noCert, nil, time.Second)
	if !IsCertError(err) || !strings.Contains(Hint(err, "x.tls"), "set x.tls.cert and x.tls.key") {
		t.Errorf("no client certificate: %v", err)
	}
	if err := Probe("127.0.0.1:"+port, c, nil, time.Second); err != nil {
		t.Errorf("the right files: %v", err)
	}
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	if err := Probe(deadAddr, c, nil, time.Second); err == nil || IsCertError(err) {
		t.Errorf("a closed port is not a certificate verdict: %v", err)
	}
	if _, err := (Files{CA: filepath.Join(t.TempDir(), "none.pem")}).Client("x.tls"); err == nil || !strings.Contains(err.Error(), "x.tls.ca") {
		t.Errorf("missing CA: %v", err)
	}
}
