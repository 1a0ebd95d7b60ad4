package sink

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// Each target.tls.mode becomes the driver's tls parameter: the driver's own
// names without files, a config registered under a name of storm's with
// them (plain-text fallback only for preferred), released once sql.Open
// has copied it. An unknown mode is refused before any connection.
func TestTLSModesInDSN(t *testing.T) {
	withCA := &tls.Config{RootCAs: x509.NewCertPool()}
	cases := []struct {
		mode     string
		tls      *tls.Config
		want     string // the tls parameter
		fallback bool
	}{
		{"", nil, "preferred", true},
		{TLSPreferred, nil, "preferred", true},
		{TLSDisabled, withCA, "false", false},
		{TLSRequired, nil, "skip-verify", false},
		{TLSVerifyIdentity, nil, "true", false},
		{TLSPreferred, withCA, "storm-target-", true},
		{TLSRequired, withCA, "storm-target-", false},
		{TLSVerifyIdentity, withCA, "storm-target-", false},
	}
	for _, c := range cases {
		cfg := Config{Host: "db.example", Port: 3306, User: "u", Password: "p", TLSMode: c.mode, TLS: c.tls}
		release, err := cfg.registerTLS()
		if err != nil {
			t.Fatalf("mode %q: %v", c.mode, err)
		}
		mc, err := mysql.ParseDSN(cfg.DSN())
		if err != nil {
			t.Fatalf("mode %q: %v", c.mode, err)
		}
		if !strings.HasPrefix(mc.TLSConfig, c.want) || mc.AllowFallbackToPlaintext != c.fallback {
			t.Errorf("mode %q (files %v): tls=%s fallback=%v, want %s %v", c.mode, c.tls != nil, mc.TLSConfig,
				mc.AllowFallbackToPlaintext, c.want, c.fallback)
		}
		if c.want == "storm-target-" {
			switch {
			case c.mode == TLSVerifyIdentity && (mc.TLS.InsecureSkipVerify || mc.TLS.ServerName != "db.example"):
				t.Errorf("verify-identity does not check the name: %+v", mc.TLS)
			case c.mode != TLSVerifyIdentity && mc.TLS.VerifyConnection == nil:
				t.Errorf("mode %q with a CA does not verify the chain", c.mode)
			}
		}
		release()
		if c.want == "storm-target-" {
			if _, err := mysql.ParseDSN(cfg.DSN()); err == nil {
				t.Errorf("mode %q: the config is still registered after release", c.mode)
			}
		}
	}
	bad := Config{TLSMode: "sometimes"}
	if _, err := bad.registerTLS(); err == nil || !strings.Contains(err.Error(), "target.tls.mode") {
		t.Errorf("unknown mode: %v", err)
	}
}

// Errors name the target by Addr, never with the password.
func TestOpenErrorHasNoPassword(t *testing.T) {
	const pw = "sink-Pw-0x5ecret"
	_, err := Open(t.Context(), Config{Host: testDB.Host, Port: testDB.Port, User: testDB.User, Password: pw})
	if err == nil || strings.Contains(err.Error(), pw) || !strings.Contains(err.Error(), testDB.User+"@") || !IsConfigError(err) {
		t.Fatalf("error %v: want the user and address, no password, and a config error", err)
	}
}
