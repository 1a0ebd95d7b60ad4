package node

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"storm/meta"
)

// heartbeatEvery is how often a node refreshes its nodes/<id> record, and
// the least time between two of its refreshes: one put per node per 5 s.
const heartbeatEvery = 5 * time.Second

// startSession is called once a session has registered the node: it
// records the lease for /metrics and refreshes the node's record until
// ctx (the session) ends.
func (n *Node) startSession(ctx context.Context, sess *concurrency.Session) {
	n.metrics.lease.Store(int64(sess.Lease()))
	n.setPhase(nodePhaseJoin)
	go func() {
		n.heartbeat(ctx, sess)
		n.metrics.lease.CompareAndSwap(int64(sess.Lease()), 0)
	}()
}

// heartbeat refreshes nodes/<id> every heartbeatEvery with the time, the
// node's phase, what it wrote and where it serves HTTP. The put is guarded
// by the key's create revision: it only ever updates the record this
// session registered, never re-creates one that is gone.
func (n *Node) heartbeat(ctx context.Context, sess *concurrency.Session) {
	key := n.job.Node(n.cfg.NodeID)
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	var (
		rec       meta.NodeRecord
		createRev int64
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if createRev == 0 {
			resp, err := n.cli.Get(ctx, key)
			if err != nil || len(resp.Kvs) == 0 || resp.Kvs[0].Lease != int64(sess.Lease()) {
				continue
			}
			if err := meta.Decode(key, resp.Kvs[0].Value, &rec); err != nil {
				continue
			}
			createRev = resp.Kvs[0].CreateRevision
		}
		rec.Heartbeat = time.Now().UTC()
		rec.Phase = n.currentPhase()
		rec.RowsWritten = n.metrics.rows.Load()
		rec.BytesWritten = n.metrics.bytes.Load()
		if a := n.metrics.addr.Load(); a != nil {
			rec.StatusAddr = *a
		}
		start := time.Now()
		resp, err := n.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", createRev)).
			Then(clientv3.OpPut(key, meta.Encode(rec), clientv3.WithLease(sess.Lease()))).
			Commit()
		n.metrics.observeEtcd("heartbeat", time.Since(start))
		switch {
		case err != nil:
			n.log.Debug("heartbeat not recorded", "err", err)
		case !resp.Succeeded:
			// The record is gone with the lease: the session ends too.
			return
		}
	}
}
