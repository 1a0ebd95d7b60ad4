package node

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/election"
	"storm/meta"
)

// jobState is what the verify and finalize leaders read back from etcd.
type jobState struct {
	spec    meta.SpecRecord
	plan    meta.PhaseMarker
	planSum meta.PlanSummary
	verify  *meta.PhaseMarker
	done    map[string]meta.Done
	failed  []meta.Failed
	cancel  *meta.CancelRequest
}

func (n *Node) readState(ctx context.Context) (*jobState, error) {
	resp, err := n.cli.Get(ctx, n.job.Root(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read job %s: %w", n.job.ID, err)
	}
	st := &jobState{done: map[string]meta.Done{}}
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		k, ok := n.job.Parse(key)
		if !ok {
			continue
		}
		switch {
		case k.Kind == meta.KindSpec:
			err = meta.Decode(key, kv.Value, &st.spec)
		case k.Kind == meta.KindPhase && k.Name == string(meta.PhasePlan):
			if err = meta.Decode(key, kv.Value, &st.plan); err == nil && st.plan.Summary != nil {
				err = meta.Decode(key, st.plan.Summary, &st.planSum)
			}
		case k.Kind == meta.KindPhase && k.Name == string(meta.PhaseVerify):
			st.verify = &meta.PhaseMarker{}
			err = meta.Decode(key, kv.Value, st.verify)
		case k.Kind == meta.KindDone:
			var d meta.Done
			err = meta.Decode(key, kv.Value, &d)
			st.done[k.Name] = d
		case k.Kind == meta.KindFailed:
			var f meta.Failed
			err = meta.Decode(key, kv.Value, &f)
			st.failed = append(st.failed, f)
		case k.Kind == meta.KindCancel:
			st.cancel = &meta.CancelRequest{}
			err = meta.Decode(key, kv.Value, st.cancel)
		}
		if err != nil {
			return nil, err
		}
	}
	return st, nil
}

// VerifySummary is the verify phase's marker summary.
type VerifySummary struct {
	Skipped string             `json:"skipped,omitempty"`
	Tables  []meta.TableResult `json:"tables,omitempty"`
}

// verify compares, per table, the rows in the target with the rows the
// shards committed (plus what an incremental job found there before).
func (n *Node) verify(ctx context.Context, l *election.Leader) (any, error) {
	st, err := n.readState(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case st.plan.Error != "":
		return VerifySummary{Skipped: "plan failed"}, nil
	case st.cancel != nil:
		return VerifySummary{Skipped: "job cancelled"}, nil
	case len(st.failed) > 0:
		return VerifySummary{Skipped: fmt.Sprintf("%d shard(s) failed", len(st.failed))}, nil
	case len(st.done) != st.planSum.Shards:
		return nil, fmt.Errorf("verify: %d of %d shards done", len(st.done), st.planSum.Shards)
	}
	expected := map[string]int64{}
	for _, d := range st.done {
		expected[d.DB+"."+d.Table] += d.Rows
	}
	var sum VerifySummary
	var bad []string
	for _, pt := range st.planSum.Tables {
		r := meta.TableResult{DB: pt.DB, Table: pt.Table, Expected: pt.InitialRows + expected[pt.DB+"."+pt.Table]}
		q := "SELECT COUNT(*) FROM " + quoteIdent(pt.DB) + "." + quoteIdent(pt.Table)
		if err := n.target.DB().QueryRowContext(ctx, q).Scan(&r.Actual); err != nil {
			return nil, fmt.Errorf("verify: count %s.%s: %w", pt.DB, pt.Table, err)
		}
		r.OK = r.Actual == r.Expected
		if dup := n.spec.Import.OnDuplicate; dup != "error" && dup != "" && r.Actual < r.Expected {
			// Rows replaced or skipped as duplicates leave fewer rows than read.
			r.OK = true
			r.Note = fmt.Sprintf("on-duplicate=%s: %d source rows were duplicates", dup, r.Expected-r.Actual)
		}
		if !r.OK {
			bad = append(bad, fmt.Sprintf("%s.%s: expected %d rows, found %d", r.DB, r.Table, r.Expected, r.Actual))
		}
		sum.Tables = append(sum.Tables, r)
	}
	if len(bad) > 0 {
		return sum, election.Fail(fmt.Errorf("row count mismatch: %s", strings.Join(bad, "; ")))
	}
	return sum, nil
}

// finalize writes the barrier: the one signal that the whole parallel
// import has ended, and how.
func (n *Node) finalize(ctx context.Context, l *election.Leader) (any, error) {
	st, err := n.readState(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	b := meta.Barrier{Job: n.job.ID, Status: meta.StatusSucceeded, Shards: st.planSum.Shards,
		Started: st.spec.CreatedAt, Finished: now, Seconds: now.Sub(st.spec.CreatedAt).Seconds(), By: n.cfg.NodeID}
	nodes := map[string]bool{st.plan.By: true, n.cfg.NodeID: true}
	for _, d := range st.done {
		b.Rows += d.Rows
		b.Bytes += d.Bytes
		nodes[d.Node] = true
	}
	var vs VerifySummary
	if st.verify != nil {
		nodes[st.verify.By] = true
		if st.verify.Summary != nil {
			if err := meta.Decode(n.job.PhaseMarker(meta.PhaseVerify), st.verify.Summary, &vs); err != nil {
				return nil, err
			}
		}
	}
	b.Tables = vs.Tables
	sort.Slice(st.failed, func(i, j int) bool { return st.failed[i].Shard < st.failed[j].Shard })
	switch {
	case st.cancel != nil:
		b.Status, b.Reason = meta.StatusCancelled, "cancelled by "+st.cancel.By
		if st.cancel.Reason != "" {
			b.Reason += ": " + st.cancel.Reason
		}
	case st.plan.Error != "":
		b.Status, b.Reason = meta.StatusFailed, "plan: "+st.plan.Error
	case len(st.failed) > 0:
		f := st.failed[0]
		b.Status = meta.StatusFailed
		b.Reason = fmt.Sprintf("%d shard(s) failed; first: %s", len(st.failed), f.Reason)
	case st.verify != nil && st.verify.Error != "":
		b.Status, b.Reason = meta.StatusFailed, "verify: "+st.verify.Error
	}
	b.Failed = st.failed[:min(len(st.failed), 20)]
	for id := range nodes {
		if id != "" {
			b.Nodes = append(b.Nodes, id)
		}
	}
	sort.Strings(b.Nodes)
	absent := clientv3.Compare(clientv3.CreateRevision(n.job.Barrier()), "=", 0)
	if _, err := l.CommitIf(ctx, []clientv3.Cmp{absent}, clientv3.OpPut(n.job.Barrier(), meta.Encode(b))); err != nil {
		return nil, fmt.Errorf("write barrier: %w", err)
	}
	n.log.Info("barrier written", "status", b.Status, "rows", b.Rows, "reason", b.Reason)
	return map[string]any{"status": b.Status}, nil
}
