package node

// TLS and credentials of a node's connections: etcd (a dedicated cluster,
// PD's own, or the one this node embeds), the target database, PD and the
// TiKV stores, and its own status endpoint. All of it is per node (paths
// differ from host to host) and none of it is part of the job spec.
// Secrets (passwords) are never logged, printed or written to etcd: errors
// name endpoints, users and settings, never a DSN or a Config.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"storm/import/sink"
	"storm/internal/etcdserver"
	"storm/internal/tlsfiles"
)

// Security is a node's TLS and etcd credentials.
type Security struct {
	// Etcd: etcd.tls.*, for the etcd client and, with Embed, the embedded
	// member's server certificate and trusted client CA.
	Etcd         tlsfiles.Files
	EtcdUser     string
	EtcdPassword string // never logged
	// TargetMode is target.tls.mode (sink.TLSModes); "" is preferred.
	TargetMode string
	Target     tlsfiles.Files
	// TiDB: tidb.tls.*, for the PD client, the TiKV stores and PD's HTTP API.
	TiDB tlsfiles.Files
	// Status: node.status-tls.* serves the status endpoint over TLS; with a
	// CA, clients must present a certificate it signed.
	Status tlsfiles.Files
}

// EtcdAccess is how a client reaches etcd.
type EtcdAccess struct {
	Endpoints []string
	TLS       tlsfiles.Files
	Username  string
	Password  string // never logged
}

// String names the endpoints and the user, never the password.
func (a EtcdAccess) String() string {
	s := strings.Join(a.Endpoints, ",")
	if a.Username != "" {
		s = a.Username + "@" + s
	}
	return s
}

// etcdAccess is the node's own etcd access.
func (c Config) etcdAccess() EtcdAccess {
	return EtcdAccess{Endpoints: c.Endpoints, TLS: c.Security.Etcd, Username: c.Security.EtcdUser, Password: c.Security.EtcdPassword}
}

// reconnectSoon: gRPC waits a second before dialling an endpoint again,
// and then longer. A node started with the one that embeds etcd finds no
// etcd for the first tens of milliseconds and then sat out that second
// (more than a small job lasts); a node cut from etcd lost as much after
// the cut healed. 100 ms first, growing to 2 s, costs a refused dial or
// two more.
var reconnectSoon = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
	MinConnectTimeout: 5 * time.Second,
})

// clientConfig checks the endpoints against the TLS settings and loads the
// files: any problem is a config error.
func (a EtcdAccess) clientConfig() (clientv3.Config, *tls.Config, error) {
	cfg := clientv3.Config{Endpoints: a.Endpoints, DialTimeout: 5 * time.Second, Logger: quietZap(),
		Username: a.Username, Password: a.Password, DialOptions: []grpc.DialOption{reconnectSoon}}
	if len(a.Endpoints) == 0 {
		return cfg, nil, errors.New("etcd.endpoints is empty")
	}
	if (a.Username == "") != (a.Password == "") {
		return cfg, nil, errors.New("etcd.username and etcd.password (or STORM_ETCD_PASSWORD, etcd.password-file) go together")
	}
	secure := 0
	for _, ep := range a.Endpoints {
		if strings.HasPrefix(ep, "https://") || strings.HasPrefix(ep, "unixs://") {
			secure++
		}
	}
	switch {
	case a.TLS.IsSet() && secure < len(a.Endpoints):
		return cfg, nil, fmt.Errorf("etcd.tls is set but etcd.endpoints %s are not all https://: write https:// endpoints", strings.Join(a.Endpoints, ","))
	case secure > 0 && secure < len(a.Endpoints):
		return cfg, nil, fmt.Errorf("etcd.endpoints %s mix http:// and https://", strings.Join(a.Endpoints, ","))
	case secure == 0:
		return cfg, nil, nil
	}
	tc, err := a.TLS.Client("etcd.tls")
	if err != nil {
		return cfg, nil, err
	}
	cfg.TLS = tc
	return cfg, tc, nil
}

// ConnectEtcd dials etcd and checks it answers, retrying for up to timeout.
// A TLS failure that retrying cannot fix (a certificate that does not
// verify, a client certificate refused or missing) and refused credentials
// end it at once; every error names the endpoints, never the password.
func ConnectEtcd(ctx context.Context, a EtcdAccess, timeout time.Duration) (*clientv3.Client, error) {
	cc, tc, err := a.clientConfig()
	if err != nil {
		return nil, usage("%w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		// The client would only say "deadline exceeded" after its retries:
		// a handshake of our own says why, at once.
		if tc != nil {
			if perr := probeAll(a.Endpoints, tc); perr != nil {
				return nil, usage("%w", perr)
			}
		}
		cli, err := tryEtcd(ctx, cc)
		if err == nil {
			return cli, nil
		}
		if isAuthError(err) {
			return nil, usage("etcd %s: %w (check etcd.username and etcd.password)", a, err)
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, usage("etcd %s unreachable after %s: %w", a, timeout, err)
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

func tryEtcd(ctx context.Context, cc clientv3.Config) (*clientv3.Client, error) {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cc.Context = ctx
	cli, err := clientv3.New(cc) // authenticates, with credentials
	if err != nil {
		return nil, err
	}
	if _, err = cli.Get(cctx, "/storm-ping"); err != nil {
		cli.Close()
		return nil, err
	}
	return cli, nil
}

func isAuthError(err error) bool {
	return errors.Is(err, rpctypes.ErrAuthFailed) || errors.Is(err, rpctypes.ErrGRPCAuthFailed) ||
		errors.Is(err, rpctypes.ErrPermissionDenied) || errors.Is(err, rpctypes.ErrGRPCPermissionDenied) ||
		errors.Is(err, rpctypes.ErrUserEmpty) || errors.Is(err, rpctypes.ErrGRPCUserEmpty) ||
		strings.Contains(err.Error(), "authentication failed")
}

// probeAll handshakes with every endpoint; when each fails for a reason
// retrying cannot fix, the error names them and what to fix.
func probeAll(endpoints []string, tc *tls.Config) error {
	var errs []error
	for _, ep := range endpoints {
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" {
			return nil
		}
		pc := tc.Clone()
		pc.NextProtos = []string{"h2"} // as gRPC asks
		err = tlsfiles.Probe(u.Host, pc, tlsfiles.HTTP2Hello, 2*time.Second)
		if !tlsfiles.IsCertError(err) {
			return nil
		}
		msg := fmt.Errorf("etcd %s: TLS: %w", ep, err)
		if h := tlsfiles.Hint(err, "etcd.tls"); h != "" {
			msg = fmt.Errorf("%w (%s)", msg, h)
		}
		errs = append(errs, msg)
	}
	return errors.Join(errs...)
}

// embedTLS is the embedded member's TLS: etcd.tls.cert and key as its
// server (and peer) certificate; etcd.tls.ca, when set, the CA its clients'
// certificates must be signed by.
func (c Config) embedTLS() (*etcdserver.TLS, error) {
	f := c.Security.Etcd
	if !f.IsSet() {
		if strings.HasPrefix(c.Endpoints[0], "https://") {
			return nil, errors.New("--embed-etcd on an https:// endpoint needs etcd.tls.cert and etcd.tls.key")
		}
		return nil, nil
	}
	if !strings.HasPrefix(c.Endpoints[0], "https://") {
		return nil, fmt.Errorf("etcd.tls is set: --embed-etcd serves etcd.endpoints[0] %s, which must be https://", c.Endpoints[0])
	}
	if _, err := f.Server("etcd.tls"); err != nil {
		return nil, err
	}
	return &etcdserver.TLS{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA, ClientCertAuth: f.CA != ""}, nil
}

// targetTLS puts target.tls into sc: the files are read now, so a missing
// or unreadable one is a config error before any connection is tried.
func (s Security) targetTLS(sc *sink.Config) error {
	if s.TargetMode == sink.TLSDisabled || !s.Target.IsSet() {
		return nil
	}
	tc, err := s.Target.Client("target.tls")
	if err != nil {
		return err
	}
	sc.TLS = tc
	return nil
}

// isLoopback says whether a listen address stays on this host.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
