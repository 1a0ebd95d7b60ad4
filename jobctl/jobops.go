package jobctl

// Steering finished jobs from the CLI (`storm job`): list them, re-open a
// failed one, forget one.

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/meta"
)

// ListJobs names the jobs under prefix: every job with a key.
func ListJobs(ctx context.Context, cli *clientv3.Client, prefix string) ([]string, error) {
	probe, err := meta.NewJob(prefix, "-")
	if err != nil {
		return nil, err
	}
	root := probe.JobsPrefix()
	resp, err := cli.Get(ctx, root, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("list jobs under %s: %w", root, err)
	}
	seen := map[string]bool{}
	var ids []string
	for _, kv := range resp.Kvs {
		id, _, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), root), "/")
		if ok && id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// RetryResult says what RetryJob re-opened.
type RetryResult struct {
	Was       meta.Status // the barrier's status before
	Reason    string      // the barrier's reason
	Failed    []string    // failed shards, to be claimed again
	Replan    bool        // the plan failed: it runs again
	Sources   []string    // sources whose plan failed: they are planned again
	Reprepare bool        // prepare failed: it runs again
	Revision  int64       // of the Txn that re-opened the job
}

// RetryJob re-opens a failed or cancelled job, once the user has fixed what
// failed it: done shards stay done; failed shards are forgotten so nodes
// claim them again; the verify-plan, verify and finalize markers, the
// verify ranges and their results, the cancel request and the barrier are
// deleted. A failed plan (or prepare) is deleted with its marker (the plan
// with the shards it wrote, a source's plan with that source's shards) so
// it runs again. All of it is one etcd Txn
// that applies only while the barrier is the one read: a succeeded job, or
// one re-opened meanwhile, is left alone. Then start nodes again.
func RetryJob(ctx context.Context, cli *clientv3.Client, job meta.Job) (*RetryResult, error) {
	resp, err := cli.Txn(ctx).Then(
		clientv3.OpGet(job.Barrier()),
		clientv3.OpGet(job.Dir(meta.KindPhase), clientv3.WithPrefix()),
		clientv3.OpGet(job.Dir(meta.KindFailed), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("read job %s: %w", job.ID, err)
	}
	bkvs := resp.Responses[0].GetResponseRange().Kvs
	if len(bkvs) == 0 {
		return nil, fmt.Errorf("job %s has no barrier: it has not finished (or does not exist), so there is nothing to retry", job.ID)
	}
	var b meta.Barrier
	if err := meta.Decode(job.Barrier(), bkvs[0].Value, &b); err != nil {
		return nil, err
	}
	if b.Status != meta.StatusFailed && b.Status != meta.StatusCancelled {
		return nil, fmt.Errorf("job %s %s: only a failed or cancelled job can be retried", job.ID, b.Status)
	}
	res := &RetryResult{Was: b.Status, Reason: b.Reason}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		var m meta.PhaseMarker
		if meta.Decode(string(kv.Key), kv.Value, &m) != nil || m.Error == "" {
			continue
		}
		k, _ := job.Parse(string(kv.Key))
		if src, ok := meta.SourceOfPhase(k.Name); ok {
			res.Sources = append(res.Sources, src)
			continue
		}
		switch meta.Phase(k.Name) {
		case meta.PhasePlan:
			res.Replan = true
		case meta.PhasePrepare:
			res.Reprepare = true
		}
	}
	for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
		if k, ok := job.Parse(string(kv.Key)); ok {
			res.Failed = append(res.Failed, k.Name)
		}
	}

	prefix := func(k meta.Kind) clientv3.Op { return clientv3.OpDelete(job.Dir(k), clientv3.WithPrefix()) }
	ops := []clientv3.Op{
		prefix(meta.KindFailed),
		// Progress records outlive shards that failed or were released;
		// no shard is in work while the barrier exists.
		prefix(meta.KindProgress),
		prefix(meta.KindVerifyRanges), prefix(meta.KindVerifyClaims), prefix(meta.KindVerifyDone), prefix(meta.KindVerifyFailed),
		// A table whose steps failed does them again (they add only what
		// is missing); the done ones stand.
		prefix(meta.KindStepsFailed), prefix(meta.KindStepClaims), prefix(meta.KindStepProgress),
		clientv3.OpDelete(job.PhaseMarker(meta.PhaseVerifyPlan)),
		clientv3.OpDelete(job.PhaseMarker(meta.PhaseVerify)),
		clientv3.OpDelete(job.PhaseMarker(meta.PhaseFinalize)),
		clientv3.OpDelete(job.Cancel()),
		clientv3.OpDelete(job.Barrier()),
	}
	if res.Replan {
		// A failed plan imported nothing; its shards and table records (if
		// it wrote any) go with it, and the next plan leader writes them
		// again.
		ops = append(ops, clientv3.OpDelete(job.PhaseMarker(meta.PhasePlan)),
			prefix(meta.KindShards), prefix(meta.KindDone), prefix(meta.KindTables),
			prefix(meta.KindSteps), prefix(meta.KindStepsDone))
	}
	for _, src := range res.Sources {
		// Shard ids begin with their source's id, which has no '.'.
		ops = append(ops, clientv3.OpDelete(job.PhaseMarker(meta.PlanSource(src))),
			clientv3.OpDelete(job.Key(meta.KindShards, src+"."), clientv3.WithPrefix()),
			clientv3.OpDelete(job.Key(meta.KindDone, src+"."), clientv3.WithPrefix()))
	}
	if res.Reprepare {
		ops = append(ops, clientv3.OpDelete(job.PhaseMarker(meta.PhasePrepare)))
	}
	tresp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(job.Barrier()), "=", bkvs[0].ModRevision)).
		Then(ops...).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("retry job %s: %w", job.ID, err)
	}
	if !tresp.Succeeded {
		return nil, fmt.Errorf("job %s: the barrier changed while retrying (another retry?); look again with storm status", job.ID)
	}
	res.Revision = tresp.Header.Revision
	return res, nil
}

// ForgetJob deletes every key of a job, if it has finished (or force) and
// no node of it is alive, in one Txn guarded by both. It returns how many
// keys it deleted.
func ForgetJob(ctx context.Context, cli *clientv3.Client, job meta.Job, force bool) (int64, error) {
	resp, err := cli.Txn(ctx).Then(
		clientv3.OpGet(job.Barrier()),
		clientv3.OpGet(job.Dir(meta.KindNodes), clientv3.WithPrefix()),
		clientv3.OpGet(job.Root(), clientv3.WithPrefix(), clientv3.WithCountOnly()),
	).Commit()
	if err != nil {
		return 0, fmt.Errorf("read job %s: %w", job.ID, err)
	}
	if resp.Responses[2].GetResponseRange().Count == 0 {
		return 0, fmt.Errorf("job %s has no keys", job.ID)
	}
	if err := liveNodes(job, resp.Responses[1].GetResponseRange().Kvs); err != nil {
		return 0, err
	}
	barrier := clientv3.Compare(clientv3.CreateRevision(job.Barrier()), "=", 0)
	if bkvs := resp.Responses[0].GetResponseRange().Kvs; len(bkvs) > 0 {
		barrier = clientv3.Compare(clientv3.ModRevision(job.Barrier()), "=", bkvs[0].ModRevision)
	} else if !force {
		return 0, fmt.Errorf("job %s has not finished (no barrier): cancel it and let a node finalize it, or forget it with --force", job.ID)
	}
	noNodes := clientv3.Compare(clientv3.CreateRevision(job.Dir(meta.KindNodes)), "=", 0).WithPrefix()
	tresp, err := cli.Txn(ctx).If(barrier, noNodes).
		Then(clientv3.OpDelete(job.Root(), clientv3.WithPrefix())).
		Else(clientv3.OpGet(job.Dir(meta.KindNodes), clientv3.WithPrefix())).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("forget job %s: %w", job.ID, err)
	}
	if !tresp.Succeeded {
		if err := liveNodes(job, tresp.Responses[0].GetResponseRange().Kvs); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("job %s changed while forgetting it; look again with storm status", job.ID)
	}
	return tresp.Responses[0].GetResponseDeleteRange().Deleted, nil
}

func liveNodes(job meta.Job, kvs []*mvccpb.KeyValue) error {
	if len(kvs) == 0 {
		return nil
	}
	var ids []string
	for _, kv := range kvs {
		if k, ok := job.Parse(string(kv.Key)); ok {
			ids = append(ids, k.Name)
		}
	}
	return fmt.Errorf("job %s has %d live node(s): %s; stop them first (they exit by themselves once the job has finished)",
		job.ID, len(ids), strings.Join(ids, ", "))
}
