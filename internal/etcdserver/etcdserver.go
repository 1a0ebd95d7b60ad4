// Package etcdserver runs a single-member etcd inside the process: for
// `storm node --embed-etcd` and for tests.
package etcdserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"storm/internal/childproc"
)

// Config of an embedded member.
type Config struct {
	Dir       string // data dir
	ClientURL string // e.g. http://127.0.0.1:2379
	PeerURL   string // e.g. http://127.0.0.1:2380
	Name      string
	// TLS serves https:// client and peer URLs with these files; nil
	// serves plain http://.
	TLS *TLS
}

// TLS is an embedded member's TLS: CertFile and KeyFile are its server
// certificate (and its client one towards its own peer URL), CAFile the
// CA that signs its clients' certificates. ClientCertAuth makes a client
// certificate signed by CAFile mandatory.
type TLS struct {
	CertFile, KeyFile, CAFile string
	ClientCertAuth            bool
}

func (t *TLS) info() transport.TLSInfo {
	return transport.TLSInfo{CertFile: t.CertFile, KeyFile: t.KeyFile, TrustedCAFile: t.CAFile, ClientCertAuth: t.ClientCertAuth}
}

// Server is a running embedded etcd.
type Server struct {
	e         *embed.Etcd
	ClientURL string
}

// Start runs the member and waits until it serves.
func Start(ctx context.Context, c Config) (*Server, error) {
	cfg := embed.NewConfig()
	cfg.Dir = c.Dir
	if c.Name != "" {
		cfg.Name = c.Name
	}
	cu, err := url.Parse(c.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: client url %q: %w", c.ClientURL, err)
	}
	pu, err := url.Parse(c.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: peer url %q: %w", c.PeerURL, err)
	}
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	if c.TLS != nil {
		if cu.Scheme != "https" || pu.Scheme != "https" {
			return nil, fmt.Errorf("embedded etcd: TLS needs https:// URLs, not %s and %s", c.ClientURL, c.PeerURL)
		}
		cfg.ClientTLSInfo = c.TLS.info()
		cfg.PeerTLSInfo = c.TLS.info()
	} else if cu.Scheme == "https" {
		return nil, fmt.Errorf("embedded etcd: %s is https:// but no certificate is configured", c.ClientURL)
	}
	// Closing the server logs its listeners' shutdown as errors; real
	// failures still arrive on Err().
	cfg.LogLevel = "fatal"
	// A single member has no peer to hear heartbeats from and never loses
	// an election, so its timeouts only delay the election it holds at
	// start: with etcd's defaults (100 ms ticks, a 1 s election timeout)
	// that took 0.4 to 1 s; a tenth of them makes it tens of ms. Leases
	// are unaffected: their TTLs are seconds, far above the minimum these
	// set (1.5 election timeouts).
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd on %s: %w", c.ClientURL, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd on %s: %w", c.ClientURL, err)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("embedded etcd on %s: not ready: %w", c.ClientURL, ctx.Err())
	}
	return &Server{e: e, ClientURL: c.ClientURL}, nil
}

// Close stops the member.
func (s *Server) Close() { s.e.Close() }

// Err reports a fatal server error.
func (s *Server) Err() <-chan error { return s.e.Err() }

// PeerURLFor derives a peer URL from a client URL: same scheme and host,
// port + 1. It keeps one-host set-ups to a single configured address.
func PeerURLFor(clientURL string) (string, error) {
	u, err := url.Parse(clientURL)
	if err != nil {
		return "", err
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return "", fmt.Errorf("client url %q has no port", clientURL)
	}
	scheme := "http"
	if u.Scheme == "https" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(u.Hostname(), strconv.Itoa(port+1)), nil
}

// FreePort returns a loopback port nobody listens on right now.
func FreePort() (int, error) { return childproc.FreePort() }

// FreeClientPort returns a free port whose next port is free too: an
// embedded member serves its peers on client port + 1 (PeerURLFor).
func FreeClientPort() (int, error) {
	for try := 0; try < 50; try++ {
		p, err := FreePort()
		if err != nil {
			return 0, err
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		if err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free pair of ports found")
}

// StartT starts a member for a test and returns its client URL and a client.
func StartT(t testing.TB) (*Server, *clientv3.Client) {
	t.Helper()
	return StartTLST(t, nil, nil)
}

// StartTLST is StartT serving https:// with serverTLS (nil: plain http://);
// the returned client uses clientTLS.
func StartTLST(t testing.TB, serverTLS *TLS, clientTLS *tls.Config) (*Server, *clientv3.Client) {
	t.Helper()
	scheme := "http"
	if serverTLS != nil {
		scheme = "https"
	}
	var s *Server
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var cp, pp int
		if cp, err = FreePort(); err != nil {
			continue
		}
		if pp, err = FreePort(); err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s, err = Start(ctx, Config{
			Dir:       t.TempDir(),
			ClientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, cp),
			PeerURL:   fmt.Sprintf("%s://127.0.0.1:%d", scheme, pp),
			TLS:       serverTLS,
		})
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(s.Close)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.ClientURL}, DialTimeout: 5 * time.Second, TLS: clientTLS})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return s, cli
}
