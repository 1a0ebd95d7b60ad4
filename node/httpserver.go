package node

// A node's HTTP endpoints, on node.status-addr (off when empty; a loopback
// address unless configured otherwise):
//
//	/metrics       Prometheus metrics of this node (node/metrics.go)
//	/status        the job's status, the document of `storm status --json`
//	/debug/pprof/  Go's profiler

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serveHTTP builds the node's metrics registry and, when node.status-addr
// is set, serves the endpoints until the returned stop is called. An
// address that can't be bound is a config error.
func (n *Node) serveHTTP(ctx context.Context) (stop func(), err error) {
	reg := n.newRegistry()
	if n.cfg.StatusAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", n.cfg.StatusAddr)
	if err != nil {
		return nil, usage("node.status-addr %s: %w", n.cfg.StatusAddr, err)
	}
	addr := ln.Addr().String()
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
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Warn("status server stopped", "addr", addr, "err", err)
		}
	}()
	n.log.Info("serving /metrics, /status and /debug/pprof", "addr", addr)
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
	st, err := ReadStatus(ctx, n.cli, n.job)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
}
