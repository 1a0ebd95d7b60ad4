package meta

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
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
	resp, err := cli.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(job.Key(p.Claims, id)), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(job.Key(p.Done, id)), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(job.Key(p.Failed, id)), "=", 0),
		// A node whose view is behind must not start work on a job that
		// was cancelled or has ended.
		clientv3.Compare(clientv3.CreateRevision(job.Cancel()), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(job.Barrier()), "=", 0),
	).Then(
		clientv3.OpPut(job.Key(p.Claims, id), Encode(Claim{Node: node, At: time.Now().UTC()}), clientv3.WithLease(lease)),
	).Commit()
	if err != nil {
		return 0, false, fmt.Errorf("claim %s %s: %w", p.Name, id, err)
	}
	return resp.Header.Revision, resp.Succeeded, nil
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
	ops := []clientv3.Op{clientv3.OpPut(job.Key(p.Done, id), Encode(record)), clientv3.OpDelete(job.Key(p.Claims, id))}
	if p.Progress != "" {
		ops = append(ops, clientv3.OpDelete(job.Key(p.Progress, id)))
	}
	resp, err := cli.Txn(ctx).If(p.ownClaim(job, id, epoch)).Then(ops...).Commit()
	if err != nil {
		return false, fmt.Errorf("complete %s %s: %w", p.Name, id, err)
	}
	return resp.Succeeded, nil
}

// Fail records an item that stopped for good, and releases its claim.
func (p Pool) Fail(ctx context.Context, cli *clientv3.Client, job Job, id string, epoch int64, f Failed) (bool, error) {
	resp, err := cli.Txn(ctx).If(p.ownClaim(job, id, epoch)).Then(
		clientv3.OpPut(job.Key(p.Failed, id), Encode(f)),
		clientv3.OpDelete(job.Key(p.Claims, id)),
	).Commit()
	if err != nil {
		return false, fmt.Errorf("fail %s %s: %w", p.Name, id, err)
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
