package node

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/meta"
)

// Status is a job's state as etcd shows it, for `storm status`.
type Status struct {
	Job     string                      `json:"job"`
	Phase   string                      `json:"phase"`
	Phases  map[string]meta.PhaseMarker `json:"phases"`
	Shards  int                         `json:"shards"`
	Done    int                         `json:"done"`
	Claimed int                         `json:"claimed"`
	Failed  int                         `json:"failed"`
	Pending int                         `json:"pending"`
	Rows    int64                       `json:"rows"`
	Bytes   int64                       `json:"bytes"`
	Total   int64                       `json:"total_bytes"`
	Nodes   []meta.NodeInfo             `json:"nodes"`
	Owners  map[string]int              `json:"shards_in_work_by_node"`
	Barrier *meta.Barrier               `json:"barrier,omitempty"`
}

// ReadStatus reads a job's keys in one range read.
func ReadStatus(ctx context.Context, cli *clientv3.Client, job meta.Job) (*Status, error) {
	resp, err := cli.Get(ctx, job.Root(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read job %s: %w", job.ID, err)
	}
	st := &Status{Job: job.ID, Phases: map[string]meta.PhaseMarker{}, Owners: map[string]int{}}
	shardBytes := map[string]int64{}
	done := map[string]bool{}
	claimed := map[string]bool{}
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		k, ok := job.Parse(key)
		if !ok {
			continue
		}
		switch k.Kind {
		case meta.KindShards:
			var s meta.Shard
			if meta.Decode(key, kv.Value, &s) == nil {
				shardBytes[k.Name] = s.Bytes
				st.Total += s.Bytes
			}
		case meta.KindDone:
			var d meta.Done
			if meta.Decode(key, kv.Value, &d) == nil {
				st.Rows += d.Rows
				st.Bytes += d.Bytes
			}
			done[k.Name] = true
		case meta.KindProgress:
			var p meta.Progress
			if meta.Decode(key, kv.Value, &p) == nil {
				st.Rows += p.Rows
				st.Bytes += p.Bytes
			}
		case meta.KindClaims:
			var c meta.Claim
			if meta.Decode(key, kv.Value, &c) == nil {
				st.Owners[c.Node]++
			}
			claimed[k.Name] = true
		case meta.KindFailed:
			st.Failed++
		case meta.KindPhase:
			var m meta.PhaseMarker
			if meta.Decode(key, kv.Value, &m) == nil {
				st.Phases[k.Name] = m
			}
		case meta.KindNodes:
			var n meta.NodeInfo
			if meta.Decode(key, kv.Value, &n) == nil {
				st.Nodes = append(st.Nodes, n)
			}
		case meta.KindBarrier:
			st.Barrier = &meta.Barrier{}
			if err := meta.Decode(key, kv.Value, st.Barrier); err != nil {
				return nil, err
			}
		}
	}
	st.Shards = len(shardBytes)
	st.Done = len(done)
	for id := range claimed {
		if !done[id] {
			st.Claimed++
		}
	}
	st.Pending = max(0, st.Shards-st.Done-st.Claimed-st.Failed)
	st.Phase = currentPhase(st)
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].ID < st.Nodes[j].ID })
	return st, nil
}

func currentPhase(st *Status) string {
	if st.Barrier != nil {
		return "finished (" + string(st.Barrier.Status) + ")"
	}
	for _, p := range []meta.Phase{meta.PhaseFinalize, meta.PhaseVerify} {
		if _, ok := st.Phases[string(p)]; ok {
			return "finalize"
		}
	}
	if _, ok := st.Phases[string(meta.PhasePlan)]; ok {
		return "import"
	}
	if len(st.Nodes) == 0 {
		return "not started"
	}
	return "plan"
}

// Print writes the status for a person.
func (st *Status) Print(w io.Writer) {
	fmt.Fprintf(w, "job %s: %s\n", st.Job, st.Phase)
	fmt.Fprintf(w, "shards: %d done, %d in work, %d pending, %d failed of %d\n", st.Done, st.Claimed, st.Pending, st.Failed, st.Shards)
	pct := 0.0
	if st.Total > 0 {
		pct = 100 * float64(st.Bytes) / float64(st.Total)
	}
	fmt.Fprintf(w, "rows: %d   bytes: %d of %d (%.1f%%)\n", st.Rows, st.Bytes, st.Total, pct)
	var phases []string
	for _, p := range []meta.Phase{meta.PhasePlan, meta.PhasePrepare, meta.PhaseVerify, meta.PhaseFinalize} {
		if m, ok := st.Phases[string(p)]; ok {
			s := fmt.Sprintf("%s by %s", p, m.By)
			if m.Error != "" {
				s += " (error: " + m.Error + ")"
			}
			phases = append(phases, s)
		}
	}
	if len(phases) > 0 {
		fmt.Fprintf(w, "phases done: %s\n", strings.Join(phases, ", "))
	}
	fmt.Fprintf(w, "nodes alive: %d\n", len(st.Nodes))
	for _, n := range st.Nodes {
		fmt.Fprintf(w, "  %-20s host %s pid %d, %d shard(s) in work, up %s\n", n.ID, n.Host, n.PID, st.Owners[n.ID],
			time.Since(n.Started).Truncate(time.Second))
	}
	if b := st.Barrier; b != nil {
		fmt.Fprintf(w, "barrier: %s, %d rows, %d shards, %.1fs, nodes %s\n", b.Status, b.Rows, b.Shards, b.Seconds, strings.Join(b.Nodes, ","))
		if b.Reason != "" {
			fmt.Fprintf(w, "reason: %s\n", b.Reason)
		}
	}
}
