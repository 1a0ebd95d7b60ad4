package meta

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ClaimShard takes an import shard; see Pool.Claim.
func ClaimShard(ctx context.Context, cli *clientv3.Client, job Job, id, node string, lease clientv3.LeaseID) (int64, bool, error) {
	return ImportPool.Claim(ctx, cli, job, id, node, lease)
}

// CompleteShard records a finished import shard; see Pool.Complete.
func CompleteShard(ctx context.Context, cli *clientv3.Client, job Job, id string, epoch int64, d Done) (bool, error) {
	return ImportPool.Complete(ctx, cli, job, id, epoch, d)
}

// FailShard records an import shard that stopped for good.
func FailShard(ctx context.Context, cli *clientv3.Client, job Job, id string, epoch int64, f Failed) (bool, error) {
	return ImportPool.Fail(ctx, cli, job, id, epoch, f)
}

// ReleaseShard gives an unfinished import shard back to the pool.
func ReleaseShard(ctx context.Context, cli *clientv3.Client, job Job, id string, epoch int64) error {
	return ImportPool.Release(ctx, cli, job, id, epoch)
}

// Claim takes an item for node on its lease, if nobody owns, finished or
// failed it. The returned epoch is the revision of the claim: a fencing
// token that only grows, carried into the database checkpoint.
func (p Pool) Claim(ctx context.Context, cli *clientv3.Client, job Job, id, node string, lease clientv3.LeaseID) (epoch int64, ok bool, err error) {
	key := job.Key(p.Claims, id)
	val := Encode(Claim{Node: node, At: time.Now().UTC()})
	resp, uncertain, err := commit(ctx, func() clientv3.Txn {
		return cli.Txn(ctx).If(
			clientv3.Compare(clientv3.CreateRevision(key), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(job.Key(p.Done, id)), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(job.Key(p.Failed, id)), "=", 0),
			// A node whose view is behind must not start work on a job
			// that was cancelled or has ended.
			clientv3.Compare(clientv3.CreateRevision(job.Cancel()), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(job.Barrier()), "=", 0),
		).Then(
			clientv3.OpPut(key, val, clientv3.WithLease(lease)),
		).Else(clientv3.OpGet(key))
	})
	if err != nil {
		return 0, false, fmt.Errorf("claim %s %s: %w", p.Name, id, err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, true, nil
	}
	// A try whose answer was lost may have written the claim: it is this
	// call's if it holds the very bytes sent (the time is in them), on
	// this lease. Left unrecognised, it would hold the item unworked for
	// as long as the lease lives.
	if kv := elseKV(resp); uncertain && kv != nil && kv.Lease == int64(lease) && string(kv.Value) == val {
		return kv.ModRevision, true, nil
	}
	return 0, false, nil
}

// ownClaim holds while the claim key is still the one this owner wrote.
func (p Pool) ownClaim(job Job, id string, epoch int64) clientv3.Cmp {
	return clientv3.Compare(clientv3.ModRevision(job.Key(p.Claims, id)), "=", epoch)
}

// Complete records a finished item and releases its claim, if the claim is
// still ours. When it is not, the item's new owner finds the finished
// checkpoint in the database (or redoes a read-only item) and writes the
// record itself.
func (p Pool) Complete(ctx context.Context, cli *clientv3.Client, job Job, id string, epoch int64, record any) (bool, error) {
	key, val := job.Key(p.Done, id), Encode(record)
	ops := []clientv3.Op{clientv3.OpPut(key, val), clientv3.OpDelete(job.Key(p.Claims, id))}
	if p.Progress != "" {
		ops = append(ops, clientv3.OpDelete(job.Key(p.Progress, id)))
	}
	ok, err := p.settle(ctx, cli, job, id, epoch, key, val, ops)
	if err != nil {
		return false, fmt.Errorf("complete %s %s: %w", p.Name, id, err)
	}
	return ok, nil
}

// Fail records an item that stopped for good, and releases its claim.
func (p Pool) Fail(ctx context.Context, cli *clientv3.Client, job Job, id string, epoch int64, f Failed) (bool, error) {
	key, val := job.Key(p.Failed, id), Encode(f)
	ok, err := p.settle(ctx, cli, job, id, epoch, key, val,
		[]clientv3.Op{clientv3.OpPut(key, val), clientv3.OpDelete(job.Key(p.Claims, id))})
	if err != nil {
		return false, fmt.Errorf("fail %s %s: %w", p.Name, id, err)
	}
	return ok, nil
}

// settle runs ops if the claim of epoch still stands; ops write val at key
// (the done or failed record). After a lost answer, a record holding
// exactly val says an earlier try did it.
func (p Pool) settle(ctx context.Context, cli *clientv3.Client, job Job, id string, epoch int64, key, val string, ops []clientv3.Op) (bool, error) {
	resp, uncertain, err := commit(ctx, func() clientv3.Txn {
		return cli.Txn(ctx).If(p.ownClaim(job, id, epoch)).Then(ops...).Else(clientv3.OpGet(key))
	})
	if err != nil {
		return false, err
	}
	if resp.Succeeded {
		return true, nil
	}
	kv := elseKV(resp)
	return uncertain && kv != nil && string(kv.Value) == val, nil
}

// commit sends the Txn that txn builds, again after an error that leaves
// etcd's answer unknown: a connection cut with the request in flight, a
// member that lost its leader, a leader change, a request etcd timed out.
// Failing instead would make the node drop all its work and join again
// for a blip of a second. It tries until ctx ends: a node whose etcd stays
// away loses its lease, and its session ends ctx. uncertain says a try
// before the answered one may have been applied; the caller's Else read
// tells.
func commit(ctx context.Context, txn func() clientv3.Txn) (resp *clientv3.TxnResponse, uncertain bool, err error) {
	pause := commitBackoff
	for {
		resp, err = txn().Commit()
		if err == nil || !Transient(ctx, err) {
			return resp, uncertain, err
		}
		uncertain = true
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, uncertain, fmt.Errorf("%w (after %v)", ctx.Err(), err)
		}
		pause = min(2*pause, maxCommitBackoff)
	}
}

// commitBackoff is the first pause before a Txn is sent again; it doubles
// up to maxCommitBackoff.
var commitBackoff, maxCommitBackoff = 50 * time.Millisecond, time.Second

// Transient tells an etcd error after which a request may succeed if sent
// again: etcd unavailable (no connection, no leader, a leader change, a
// request timed out inside etcd) or overloaded. A lease that is gone, a
// refused request, or ctx itself ending is not.
func Transient(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	code := status.Code(err)
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	}
	switch code {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded:
		return true
	}
	return false
}

// elseKV is the key the Else branch read, or nil.
func elseKV(resp *clientv3.TxnResponse) *mvccpb.KeyValue {
	if resp.Succeeded || len(resp.Responses) == 0 {
		return nil
	}
	r := resp.Responses[0].GetResponseRange()
	if r == nil || len(r.Kvs) == 0 {
		return nil
	}
	return r.Kvs[0]
}

// PutOwned runs ops (puts of another pool's items) if the claim of epoch
// still stands: work an item's owner hands on, written by it alone.
func (p Pool) PutOwned(ctx context.Context, cli *clientv3.Client, job Job, id string, epoch int64, ops ...clientv3.Op) (bool, error) {
	resp, _, err := commit(ctx, func() clientv3.Txn {
		return cli.Txn(ctx).If(p.ownClaim(job, id, epoch)).Then(ops...)
	})
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", p.Name, id, err)
	}
	return resp.Succeeded, nil
}

// Release gives an unfinished item back to the pool.
func (p Pool) Release(ctx context.Context, cli *clientv3.Client, job Job, id string, epoch int64) error {
	_, err := cli.Txn(ctx).If(p.ownClaim(job, id, epoch)).Then(clientv3.OpDelete(job.Key(p.Claims, id))).Commit()
	if err != nil {
		return fmt.Errorf("release %s %s: %w", p.Name, id, err)
	}
	return nil
}

// ReadBarrier returns the barrier, or nil if the job has not finished, and
// the revision the read saw.
func ReadBarrier(ctx context.Context, cli *clientv3.Client, job Job) (*Barrier, int64, error) {
	resp, err := cli.Get(ctx, job.Barrier())
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", job.Barrier(), err)
	}
	if len(resp.Kvs) == 0 {
		return nil, resp.Header.Revision, nil
	}
	var b Barrier
	if err := Decode(job.Barrier(), resp.Kvs[0].Value, &b); err != nil {
		return nil, 0, err
	}
	return &b, resp.Header.Revision, nil
}

// WaitBarrier blocks until the barrier exists.
func WaitBarrier(ctx context.Context, cli *clientv3.Client, job Job) (Barrier, error) {
	for {
		b, rev, err := ReadBarrier(ctx, cli, job)
		if err != nil {
			return Barrier{}, err
		}
		if b != nil {
			return *b, nil
		}
		wctx, cancel := context.WithCancel(ctx)
		wch := cli.Watch(wctx, job.Barrier(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if resp.Err() != nil || len(resp.Events) > 0 {
				break
			}
		}
		cancel()
		if ctx.Err() != nil {
			return Barrier{}, ctx.Err()
		}
	}
}
