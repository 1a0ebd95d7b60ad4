package tikv

// TLS to the cluster (tidb.tls): the PD client's gRPC, each TiKV store's
// ImportSST service and PD's HTTP API all use the same CA and client
// certificate, as TiDB's own components do.

import (
	"crypto/tls"
	"errors"
	"net/http"

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

func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS.IsSet() {
		return nil, nil
	}
	if err := CheckTLS(c.TLS); err != nil {
		return nil, err
	}
	return c.TLS.Client(tlsSetting)
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
