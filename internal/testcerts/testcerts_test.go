package testcerts

import (
	"crypto/tls"
	"io"
	"strings"
	"testing"
)

// The server certificate verifies for 127.0.0.1 and localhost against the
// CA, the client certificate is accepted by a server that requires one, and
// a second Set's CA trusts neither.
func TestHandshake(t *testing.T) {
	s := New(t, "storm.test")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", s.ServerTLS(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if tc := c.(*tls.Conn); tc.Handshake() == nil {
					_, _ = io.WriteString(c, "ok")
				}
			}()
		}
	}()
	dial := func(cfg *tls.Config) (string, error) {
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			return "", err
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		return string(b), err
	}
	for _, name := range []string{"127.0.0.1", "localhost", "storm.test"} {
		cfg := s.ClientTLS(t)
		cfg.ServerName = name
		if got, err := dial(cfg); err != nil || got != "ok" {
			t.Errorf("server name %s: %q %v", name, got, err)
		}
	}
	// No client certificate: the server refuses (TLS 1.3 says so after the
	// client's side of the handshake, on the first read).
	noCert := &tls.Config{RootCAs: s.Pool(), ServerName: "127.0.0.1"}
	if _, err := dial(noCert); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without a client certificate: %v", err)
	}
	other := New(t)
	wrongCA := s.ClientTLS(t)
	wrongCA.RootCAs = other.Pool()
	wrongCA.ServerName = "127.0.0.1"
	if _, err := dial(wrongCA); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("with another CA: %v", err)
	}
}
