package tikv

// TLS to the cluster (tidb.tls): the PD client's gRPC, each TiKV store's
// ImportSST service and PD's HTTP API all use the same CA and client
// certificate, as TiDB's own components do.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"

	"github.com/tikv/client-go/v2/config"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"storm/internal/tlsfiles"
)

// tlsSetting names the setting in errors.
const tlsSetting = "tidb.tls"

// CheckTLS checks the files of a tidb.tls setting: PD's client uses TLS
// only with all three of CA, certificate and key.
func CheckTLS(f tlsfiles.Files) error {
	if !f.IsSet() {
		return nil
	}
	if f.CA == "" || f.Cert == "" || f.Key == "" {
		return errors.New("tidb.tls needs ca, cert and key: PD and TiKV take TLS with client certificates only")
	}
	return f.Check(tlsSetting)
}

// security is tidb.tls as client-go's security config, checked first so that
// a bad file is named with its setting; unset, it is empty (plain).
func (c Config) security() (config.Security, error) {
	if !c.TLS.IsSet() {
		return config.Security{}, nil
	}
	if err := CheckTLS(c.TLS); err != nil {
		return config.Security{}, err
	}
	return config.NewSecurity(c.TLS.CA, c.TLS.Cert, c.TLS.Key, nil), nil
}

// tlsConfig is the client TLS config of security (nil: plain).
func (c Config) tlsConfig() (*tls.Config, error) {
	sec, err := c.security()
	if err != nil || sec.ClusterSSLCA == "" {
		return nil, err
	}
	tc, err := sec.ToTLSConfig()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tlsSetting, err)
	}
	tc.MinVersion = tls.VersionTLS12
	return tc, nil
}

// grpcCreds are the transport credentials of a store connection.
func (c Config) grpcCreds() (grpc.DialOption, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	if tc == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(tc)), nil
}

// HTTPTransport is the transport for PD's HTTP API: http.DefaultTransport
// without TLS files, else HTTPS (HTTP/1.1, a few requests a minute) with
// them. A file that can't be read fails every request with that error.
func HTTPTransport(f tlsfiles.Files) http.RoundTripper {
	if !f.IsSet() {
		return http.DefaultTransport
	}
	tc, err := Config{TLS: f}.tlsConfig()
	if err != nil {
		return failingTransport{err}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	t.ForceAttemptHTTP2 = false
	t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	return t
}

type failingTransport struct{ err error }

func (f failingTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, f.err }
