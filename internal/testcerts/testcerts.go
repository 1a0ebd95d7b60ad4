// Package testcerts generates a private CA and a server and a client
// certificate signed by it, as PEM files in a test's temporary directory:
// for etcd, MariaDB and the TiKV fakes served over TLS in tests.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Set is a CA and two certificates it signed, as files.
type Set struct {
	Dir string
	// CA is the CA certificate (PEM): what a client or server trusts.
	CA string
	// ServerCert and ServerKey: a certificate for the hosts given to New,
	// always 127.0.0.1 and localhost, usable as a server certificate and
	// also as a client one (an embedded etcd member dials itself with it).
	ServerCert, ServerKey string
	// ClientCert and ClientKey: a client certificate, CN "storm-client".
	ClientCert, ClientKey string

	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
}

// New writes a fresh CA and certificates into t.TempDir(). hosts are
// added to the server certificate's SANs (IP addresses as IP SANs).
func New(t testing.TB, hosts ...string) *Set {
	t.Helper()
	s, err := Generate(t.TempDir(), hosts...)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return s
}

// Generate is New outside a test: the files go into dir.
func Generate(dir string, hosts ...string) (*Set, error) {
	s := &Set{Dir: dir}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "storm test CA", Organization: []string{"storm tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	if s.ca, err = x509.ParseCertificate(caDER); err != nil {
		return nil, err
	}
	s.caKey = caKey
	s.CA = filepath.Join(dir, "ca.pem")
	if err := writePEM(s.CA, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}

	names := []string{"127.0.0.1", "localhost"}
	for _, h := range hosts {
		if !slices.Contains(names, h) {
			names = append(names, h)
		}
	}
	s.ServerCert, s.ServerKey = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	if err := s.issue("storm-server", names, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		s.ServerCert, s.ServerKey); err != nil {
		return nil, err
	}
	s.ClientCert, s.ClientKey = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	if err := s.issue("storm-client", nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		s.ClientCert, s.ClientKey); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Set) issue(cn string, names []string, usage []x509.ExtKeyUsage, certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"storm tests"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usage,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca, &key.PublicKey, s.caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
		return err
	}
	return writePEM(keyPath, "PRIVATE KEY", keyDER)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err)
	}
	return n
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// Pool is a cert pool holding the CA.
func (s *Set) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.ca)
	return p
}

// ServerTLS is a server config with the server certificate that requires
// and verifies client certificates signed by the CA.
func (s *Set) ServerTLS(t testing.TB) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(s.ServerCert, s.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: s.Pool(),
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
}

// ClientTLS is a client config that trusts the CA and presents the client
// certificate.
func (s *Set) ClientTLS(t testing.TB) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(s.ClientCert, s.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: s.Pool(), MinVersion: tls.VersionTLS12}
}
