// Package tlsfiles turns the PEM files of storm's *.tls settings (a CA, a
// certificate and its key) into crypto/tls configs, with errors that name
// the setting, and explains TLS failures so that a node's error says what
// to fix.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Files are the PEM files of one TLS setting. Key is a path, like the
// others: the private key of Cert.
type Files struct {
	CA   string
	Cert string
	Key  string
}

// IsSet says whether any file is given.
func (f Files) IsSet() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// load reads the files; name is the setting ("etcd.tls") for errors.
func (f Files) load(name string) (pool *x509.CertPool, certs []tls.Certificate, err error) {
	if (f.Cert == "") != (f.Key == "") {
		return nil, nil, fmt.Errorf("%s: cert and key go together (cert %q, key %q)", name, f.Cert, f.Key)
	}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.ca: %w", name, err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("%s.ca %s: no PEM certificate in it", name, f.CA)
		}
	}
	if f.Cert != "" {
		for _, p := range []struct{ key, path string }{{"cert", f.Cert}, {"key", f.Key}} {
			if _, err := os.Stat(p.path); err != nil {
				return nil, nil, fmt.Errorf("%s.%s: %w", name, p.key, err)
			}
		}
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.cert %s and %s.key %s: %w", name, f.Cert, name, f.Key, err)
		}
		certs = []tls.Certificate{c}
	}
	return pool, certs, nil
}

// Check reads and parses every file given.
func (f Files) Check(name string) error {
	_, _, err := f.load(name)
	return err
}

// Client is a client config: the server's certificate is verified against
// CA (the system's roots without one) and the name dialed; Cert, when
// given, is presented to servers that ask for one.
func (f Files) Client(name string) (*tls.Config, error) {
	pool, certs, err := f.load(name)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: certs, MinVersion: tls.VersionTLS12}, nil
}

// ChainOnly makes a client config verify the server's certificate chain
// against its RootCAs (or the system's) but not the server's name: MySQL's
// ssl-mode=VERIFY_CA.
func ChainOnly(c *tls.Config) *tls.Config {
	c = c.Clone()
	roots := c.RootCAs
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the server sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
		}
		return nil
	}
	return c
}

// Server is a server config with Cert; with CA given, clients must present
// a certificate it signed.
func (f Files) Server(name string) (*tls.Config, error) {
	if f.Cert == "" {
		return nil, fmt.Errorf("%s: serving TLS needs cert and key", name)
	}
	pool, certs, err := f.load(name)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{Certificates: certs, MinVersion: tls.VersionTLS12}
	if pool != nil {
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// IsCertError says whether err is a TLS failure that trying again will not
// fix: a certificate that does not verify, a name it does not cover, or the
// other side refusing ours (or our lack of one).
func IsCertError(err error) bool {
	if err == nil {
		return false
	}
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		cve *tls.CertificateVerificationError
		rhe tls.RecordHeaderError
	)
	if errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) || errors.As(err, &cve) || errors.As(err, &rhe) {
		return true
	}
	return hint(err.Error()) != ""
}

// Hint explains a TLS error in terms of the setting name ("etcd.tls"), or
// is empty for an error it does not recognise.
func Hint(err error, name string) string {
	if err == nil {
		return ""
	}
	h := hint(err.Error())
	if h == "" {
		return ""
	}
	return strings.ReplaceAll(h, "NAME", name)
}

func hint(msg string) string {
	switch {
	case strings.Contains(msg, "certificate signed by unknown authority"):
		return "the server's certificate is not signed by NAME.ca"
	case strings.Contains(msg, "x509: certificate is valid for"), strings.Contains(msg, "doesn't contain any IP SANs"),
		strings.Contains(msg, "x509: certificate is not valid for any names"):
		return "the server's certificate does not name the host dialed"
	case strings.Contains(msg, "x509: certificate has expired"), strings.Contains(msg, "x509: certificate is not yet valid"):
		return "a certificate is outside its validity period"
	case strings.Contains(msg, "tls: certificate required"):
		return "the server requires a client certificate: set NAME.cert and NAME.key"
	case strings.Contains(msg, "tls: unknown certificate authority"), strings.Contains(msg, "tls: bad certificate"),
		strings.Contains(msg, "tls: unknown certificate"), strings.Contains(msg, "tls: unsupported certificate"):
		return "the server refused our client certificate (NAME.cert): is it signed by a CA the server trusts?"
	case strings.Contains(msg, "first record does not look like a TLS handshake"),
		strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return "the server does not speak TLS here"
	}
	return ""
}

// HTTP2Hello opens an HTTP/2 (gRPC) connection: the client preface and an
// empty SETTINGS frame, which a server answers with its own SETTINGS.
var HTTP2Hello = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")

// Probe dials addr (host:port) with cfg and completes a handshake. A
// server that refuses our certificate says so only after the handshake in
// TLS 1.3, so Probe then sends hello (if any) and waits for the first byte
// of an answer, or an alert; without an answer within timeout it takes the
// server to have accepted us. Only an error IsCertError knows is a verdict:
// a server that is down is for the caller's retries to find.
func Probe(addr string, cfg *tls.Config, hello []byte, timeout time.Duration) error {
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return err
		}
		cfg.ServerName = host
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: cfg}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if len(hello) > 0 {
		if _, err := c.Write(hello); err != nil {
			if IsCertError(err) {
				return err
			}
			return nil
		}
	} else {
		_ = c.SetReadDeadline(time.Now().Add(min(timeout, 500*time.Millisecond)))
	}
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil // no alert: accepted, waiting for us to speak
		}
		if IsCertError(err) {
			return err
		}
	}
	return nil
}
