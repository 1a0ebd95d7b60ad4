package node

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"storm/election"
	"storm/import/checksum"
	"storm/import/sink"
	"storm/meta"
)

// register puts nodes/<id> on the session's lease. A key left by an earlier
// life of this node (kill -9, then a restart) vanishes when its lease runs
// out, so we wait that long before calling the id a duplicate.
func (n *Node) register(ctx context.Context, sess *concurrency.Session) error {
	host, _ := os.Hostname()
	info := meta.NodeInfo{ID: n.cfg.NodeID, Host: host, PID: os.Getpid(), Workers: n.cfg.Workers,
		Started: time.Now().UTC(), Lease: int64(sess.Lease())}
	key := n.job.Node(n.cfg.NodeID)
	deadline := time.Now().Add(time.Duration(n.cfg.LeaseTTL)*time.Second + 3*time.Second)
	for {
		resp, err := n.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, meta.Encode(info), clientv3.WithLease(sess.Lease()))).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return fmt.Errorf("register node %s: %w", n.cfg.NodeID, err)
		}
		if resp.Succeeded {
			n.log.Info("joined job", "lease", fmt.Sprintf("%x", sess.Lease()))
			return nil
		}
		var other meta.NodeInfo
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			_ = meta.Decode(key, kvs[0].Value, &other)
		}
		if time.Now().After(deadline) {
			return usage("node id %q is already live in job %s (host %s, pid %d): give each node its own node.id",
				n.cfg.NodeID, n.job.ID, other.Host, other.PID)
		}
		n.log.Info("node id still registered; waiting for its old lease to expire", "host", other.Host, "pid", other.PID)
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// serverStart is this node's first SQL server when the target has several:
// the nodes of the job in the order they joined, the i-th beginning on
// server i (mod their number), so that nodes begin on different servers.
// A node that cannot tell falls back on its id's hash (sink.StartFor).
func (n *Node) serverStart(ctx context.Context) int {
	servers := len(n.spec.Target.Hosts)
	if servers < 2 {
		return 0
	}
	resp, err := n.cli.Get(ctx, n.job.Dir(meta.KindNodes), clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err == nil {
		for i, kv := range resp.Kvs {
			if string(kv.Key) == n.job.Node(n.cfg.NodeID) {
				return i % servers
			}
		}
	}
	return sink.StartFor(n.cfg.NodeID, servers)
}

// joinSpec writes the job spec if this node is first, and otherwise refuses
// to run with a spec that differs from the one in etcd.
func (n *Node) joinSpec(ctx context.Context) error {
	key := n.job.Spec()
	rec := meta.SpecRecord{Spec: n.spec, CreatedBy: n.cfg.NodeID, CreatedAt: time.Now().UTC()}
	resp, err := n.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, meta.Encode(rec))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	if resp.Succeeded {
		n.log.Info("wrote the job spec")
		return nil
	}
	var have meta.SpecRecord
	if err := meta.Decode(key, resp.Responses[0].GetResponseRange().Kvs[0].Value, &have); err != nil {
		return usage("%w", err)
	}
	if diff := have.Spec.Diff(n.spec); len(diff) > 0 {
		if have.Spec.Verify.RowHash != n.spec.Verify.RowHash {
			// The spec names the hash; the config sets its width.
			if rh, err := checksum.RowHashNamed(have.Spec.Verify.RowHash); err == nil {
				diff = append(diff, fmt.Sprintf("to join, set verify.row-hash-bits = %d", int(rh)))
			}
		}
		return usage("this node's config differs from job %s's spec (written by %s): %s",
			n.job.ID, have.CreatedBy, strings.Join(diff, "; "))
	}
	return nil
}

func (n *Node) runPhase(ctx context.Context, sess *concurrency.Session, p meta.Phase, fn election.Func) (meta.PhaseMarker, error) {
	n.setPhase(p)
	m, err := election.Once(ctx, sess, n.job, p, n.cfg.NodeID, func(ctx context.Context, l *election.Leader) (any, error) {
		n.log.Info("leading phase", "phase", p)
		return fn(ctx, l)
	})
	if err != nil {
		return m, err
	}
	n.log.Info("phase complete", "phase", p, "by", m.By, "error", m.Error)
	return m, nil
}

// targetConfig is how this node reaches and writes the target.
func targetConfig(cfg Config, spec meta.Spec) (sink.Config, error) {
	sc := sink.Config{
		Host: spec.Target.Host, Port: spec.Target.Port, User: spec.Target.User, Password: cfg.Password,
		OnDuplicate: spec.Import.OnDuplicate, Mode: spec.Import.Mode, BatchBytes: spec.Import.BatchSize, MaxErrors: spec.Import.MaxErrors,
		TimeZone: spec.Target.TimeZone, TLSMode: cfg.Security.TargetMode,
		// Several SQL servers: this node begins on one of its own.
		Addrs: spec.Target.Hosts, Start: sink.StartFor(cfg.NodeID, len(spec.Target.Hosts)),
	}
	if err := cfg.Security.targetTLS(&sc); err != nil { // node/security.go
		return sc, usage("%w", err)
	}
	return sc, nil
}

// openTarget opens the target; with several SQL servers, start is the
// node's first (serverStart).
func openTarget(ctx context.Context, cfg Config, spec meta.Spec, start int) (*sink.Target, error) {
	sc, err := targetConfig(cfg, spec)
	if err != nil {
		return nil, err
	}
	sc.Start = start
	where := strings.Join(spec.Target.Addrs(), ",")
	deadline := time.Now().Add(cfg.StartTimeout)
	for {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		t, err := sink.Open(octx, sc)
		cancel()
		if err == nil {
			return t, nil
		}
		// Refused credentials or certificates are a config error: no retry.
		if sink.IsConfigError(err) {
			return nil, usage("cannot log in to target database %s (not retried): %w", where, err)
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, usage("target database %s unreachable after %s: %w", where, cfg.StartTimeout, err)
		}
		cfg.Log.Warn("target database not reachable yet; retrying", "addr", where, "err", err)
		time.Sleep(time.Second)
	}
}

// quietZap keeps the etcd client's own logging to errors.
func quietZap() *zap.Logger {
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	l, err := cfg.Build()
	if err != nil {
		return zap.NewNop()
	}
	return l
}
