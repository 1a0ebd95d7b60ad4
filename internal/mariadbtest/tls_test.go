package mariadbtest

import (
	"context"
	"crypto/tls"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"storm/internal/testcerts"
)

// With TLS files, the server speaks TLS with its certificate; the REQUIRE
// SSL user is refused in plain text and accepted over TLS verified against
// the CA; the REQUIRE X509 user needs a client certificate besides.
func TestTLSUsers(t *testing.T) {
	certs := testcerts.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := StartWith(ctx, t.TempDir(), Options{TLS: &TLSFiles{CA: certs.CA, Cert: certs.ServerCert, Key: certs.ServerKey}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	ping := func(user string, tc *tls.Config) error {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, s.Password, "tcp", s.addr()
		cfg.TLS = tc
		c, err := mysql.NewConnector(cfg)
		if err != nil {
			return err
		}
		db := sql.OpenDB(c)
		defer db.Close()
		var cipher string
		if err := db.QueryRowContext(ctx, "SHOW STATUS LIKE 'Ssl_cipher'").Scan(new(string), &cipher); err != nil {
			return err
		}
		if tc != nil && cipher == "" {
			t.Errorf("%s: connected without TLS", user)
		}
		return nil
	}
	verified := &tls.Config{RootCAs: certs.Pool(), ServerName: "127.0.0.1"}
	withCert := certs.ClientTLS(t)
	withCert.ServerName = "127.0.0.1"
	if err := ping(s.User, nil); err != nil {
		t.Errorf("plain user in plain text: %v", err)
	}
	if err := ping(s.SSLUser, nil); err == nil || !strings.Contains(err.Error(), "Access denied") {
		t.Errorf("REQUIRE SSL user in plain text: %v", err)
	}
	if err := ping(s.SSLUser, verified); err != nil {
		t.Errorf("REQUIRE SSL user over TLS: %v", err)
	}
	if err := ping(s.X509User, verified); err == nil {
		t.Error("REQUIRE X509 user without a client certificate was accepted")
	}
	if err := ping(s.X509User, withCert); err != nil {
		t.Errorf("REQUIRE X509 user with a client certificate: %v", err)
	}
}
