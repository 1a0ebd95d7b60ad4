// Package etcdserver runs a single-member etcd inside the process: for
// `storm node --embed-etcd` and for tests.
package etcdserver

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// Config of an embedded member.
type Config struct {
	Dir       string // data dir
	ClientURL string // e.g. http://127.0.0.1:2379
	PeerURL   string // e.g. http://127.0.0.1:2380
	Name      string
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
	// Closing the server logs its listeners' shutdown as errors; real
	// failures still arrive on Err().
	cfg.LogLevel = "fatal"
	// Leases must survive a short pause of this process (GC, a slow disk):
	// the default election timeouts suit a single member.
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

// PeerURLFor derives a peer URL from a client URL: same host, port + 1. It
// keeps one-host set-ups to a single configured address.
func PeerURLFor(clientURL string) (string, error) {
	u, err := url.Parse(clientURL)
	if err != nil {
		return "", err
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return "", fmt.Errorf("client url %q has no port", clientURL)
	}
	return "http://" + net.JoinHostPort(u.Hostname(), strconv.Itoa(port+1)), nil
}

// FreePort returns a loopback port nobody listens on right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartT starts a member for a test and returns its client URL and a client.
func StartT(t testing.TB) (*Server, *clientv3.Client) {
	t.Helper()
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
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", cp),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", pp),
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
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.ClientURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return s, cli
}
