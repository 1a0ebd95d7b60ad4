package sink

// TLS to the target, as MySQL's ssl-mode:
//
//	disabled         plain TCP
//	preferred        TLS when the server offers it, else plain; the server's
//	                 certificate is checked against the CA only when one is
//	                 given (default)
//	required         TLS or nothing; the certificate chain is checked against
//	                 the CA when one is given (VERIFY_CA), not the host name
//	verify-identity  TLS, the chain checked against the CA (or the system's
//	                 roots) and the certificate must name the host dialed
//
// A client certificate, when given, is presented in every mode but
// disabled. The config is registered with go-sql-driver under a name of its
// own for as long as sql.Open takes to copy it.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"

	"storm/internal/tlsfiles"
)

// TLS modes.
const (
	TLSDisabled       = "disabled"
	TLSPreferred      = "preferred"
	TLSRequired       = "required"
	TLSVerifyIdentity = "verify-identity"
)

// TLSModes lists the modes, for config errors.
var TLSModes = []string{TLSDisabled, TLSPreferred, TLSRequired, TLSVerifyIdentity}

var tlsSeq atomic.Int64

func (c Config) tlsMode() string {
	if c.TLSMode == "" {
		return TLSPreferred
	}
	return c.TLSMode
}

// registerTLS registers the mode's config when files are given; release
// deregisters it.
func (c *Config) registerTLS() (release func(), err error) {
	mode := c.tlsMode()
	switch mode {
	case TLSDisabled, TLSPreferred, TLSRequired, TLSVerifyIdentity:
	default:
		return nil, fmt.Errorf("target.tls.mode %q: want disabled, preferred, required or verify-identity", c.TLSMode)
	}
	if mode == TLSDisabled || c.TLS == nil {
		return func() {}, nil
	}
	tc := c.TLS.Clone()
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	if mode == TLSVerifyIdentity {
		if tc.ServerName == "" {
			tc.ServerName = c.Host
		}
	} else if tc.RootCAs != nil {
		tc = tlsfiles.ChainOnly(tc)
	} else {
		tc.InsecureSkipVerify = true
	}
	name := fmt.Sprintf("storm-target-%d", tlsSeq.Add(1))
	if err := mysql.RegisterTLSConfig(name, tc); err != nil {
		return nil, err
	}
	c.tlsName = name
	return func() { mysql.DeregisterTLSConfig(name) }, nil
}

// setTLS puts the mode into the driver's config.
func (c Config) setTLS(mc *mysql.Config) {
	mode := c.tlsMode()
	switch {
	case mode == TLSDisabled:
		mc.TLSConfig = "false"
	case c.tlsName != "":
		mc.TLSConfig = c.tlsName
		mc.AllowFallbackToPlaintext = mode == TLSPreferred
	case mode == TLSRequired:
		mc.TLSConfig = "skip-verify"
	case mode == TLSVerifyIdentity:
		mc.TLSConfig = "true"
	default:
		mc.TLSConfig = "preferred"
	}
}

// tlsHint explains a connection error that TLS settings may cause.
func (c Config) tlsHint(err error) string {
	var me *mysql.MySQLError
	switch {
	case errors.Is(err, mysql.ErrNoTLS):
		return fmt.Sprintf(" (target.tls.mode is %s but the server does not offer TLS)", c.tlsMode())
	case errors.As(err, &me) && me.Number == 1045 && c.tlsMode() == TLSDisabled:
		return " (target.tls.mode is disabled: a user created REQUIRE SSL or X509 is refused without TLS)"
	case errors.As(err, &me) && me.Number == 1045 && c.TLS != nil && len(c.TLS.Certificates) == 0:
		return " (if the user was created REQUIRE X509, it also needs target.tls.cert and target.tls.key)"
	}
	if h := tlsfiles.Hint(err, "target.tls"); h != "" {
		return " (" + h + ")"
	}
	return ""
}

// IsConfigError says whether an error of Open is one that retrying will
// not fix: the server refused the user or its password, or TLS failed on
// a certificate or on a server without TLS.
func IsConfigError(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1044, 1045, 1251, 1698, 3159: // access denied; auth plugin; insecure transport refused
			return true
		}
	}
	return errors.Is(err, mysql.ErrNoTLS) || tlsfiles.IsCertError(err)
}
