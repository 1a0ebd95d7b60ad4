package node

// A node's HTTP endpoints, on node.status-addr (off when empty; bound to
// the address configured, which should be loopback or a management
// network: a node warns when it is neither loopback nor TLS with client
// certificates), over TLS with node.status-tls.cert and key (and client
// certificates signed by node.status-tls.ca, when set):
//
//	/metrics       Prometheus metrics of this node (node/metrics.go)
//	/status        the job's status, the document of `storm status --json`
//	/debug/pprof/  Go's profiler

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"storm/jobctl"
)

// serveHTTP builds the node's metrics registry and, when node.status-addr
// is set, serves the endpoints until the returned stop is called. An
// address that can't be bound is a config error.
func (n *Node) serveHTTP(ctx context.Context) (stop func(), err error) {
	reg := n.newRegistry()
	if n.cfg.StatusAddr == "" {
		return func() {}, nil
	}
	var tc *tls.Config
	if st := n.cfg.Security.Status; st.IsSet() {
		if tc, err = st.Server("node.status-tls"); err != nil {
			return nil, usage("%w", err)
		}
	}
	ln, err := net.Listen("tcp", n.cfg.StatusAddr)
	if err != nil {
		return nil, usage("node.status-addr %s: %w", n.cfg.StatusAddr, err)
	}
	scheme := "http"
	if tc != nil {
		ln = tls.NewListener(ln, tc)
		scheme = "https"
	}
	addr := ln.Addr().String()
	if !isLoopback(addr) && (tc == nil || tc.ClientCAs == nil) {
		n.log.Warn("the status endpoint is reachable from other hosts without client certificates: anyone there can read "+
			"/status and /debug/pprof; bind node.status-addr to loopback or set node.status-tls.ca", "addr", addr)
	}
	n.metrics.addr.Store(&addr)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/status", n.serveStatus)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		// Refused handshakes (no client certificate, plain http) go to the
		// node's log, at debug: a port scanner is no news.
		ErrorLog: slog.NewLogLogger(n.log.With("addr", addr).Handler(), slog.LevelDebug)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Warn("status server stopped", "addr", addr, "err", err)
		}
	}()
	n.log.Info("serving /metrics, /status and /debug/pprof", "addr", addr, "scheme", scheme)
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
		<-done
	}, nil
}

// serveStatus writes the job's status as JSON.
func (n *Node) serveStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	st, err := jobctl.ReadStatus(ctx, n.cli, n.job)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
}
