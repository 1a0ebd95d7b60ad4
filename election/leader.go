package election

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Leader writes on behalf of an elected node. Every write is fenced by the
// election key: it succeeds only while that key still exists with the
// revision at which this node won.
type Leader struct {
	cli  *clientv3.Client
	e    *concurrency.Election
	node string
}

// Node is the id of the leading node.
func (l *Leader) Node() string { return l.node }

// Client is the etcd client, for reads; writes go through Commit.
func (l *Leader) Client() *clientv3.Client { return l.cli }

func (l *Leader) guard() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(l.e.Key()), "=", l.e.Rev())
}

// Commit applies ops atomically while this node leads; ErrNotLeader otherwise.
func (l *Leader) Commit(ctx context.Context, ops ...clientv3.Op) error {
	ok, err := l.CommitIf(ctx, nil, ops...)
	if err == nil && !ok {
		return fmt.Errorf("commit: %w", ErrNotLeader)
	}
	return err
}

// CommitIf applies ops if this node leads and every cmp holds. It returns
// false when a cmp failed, and ErrNotLeader when the leadership did.
func (l *Leader) CommitIf(ctx context.Context, cmps []clientv3.Cmp, ops ...clientv3.Op) (bool, error) {
	resp, err := l.cli.Txn(ctx).
		If(append([]clientv3.Cmp{l.guard()}, cmps...)...).
		Then(ops...).
		Else(clientv3.OpGet(l.e.Key())).
		Commit()
	if err != nil {
		return false, err
	}
	if resp.Succeeded {
		return true, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 || kvs[0].CreateRevision != l.e.Rev() {
		return false, ErrNotLeader
	}
	return false, nil
}
