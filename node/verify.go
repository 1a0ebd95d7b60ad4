package node

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/election"
	"storm/import/checksum"
	"storm/import/sink"
	"storm/meta"
)

// jobState is what the verify and finalize leaders read back from etcd.
type jobState struct {
	spec    meta.SpecRecord
	plan    meta.PhaseMarker
	prepare meta.PhaseMarker
	planSum meta.PlanSummary
	verify  *meta.PhaseMarker
	vplan   *VerifyPlanSummary
	fold    *doneFold // the done records, only when read: see totals
	totals  ImportTotals
	failed  []meta.Failed
	vdone   []meta.VerifyDone
	vfailed []meta.Failed
	sdone   []meta.StepsDone
	sfailed []meta.Failed
	cancel  *meta.CancelRequest
}

// readState reads, at one revision and in pages, the keys of the job that
// verify and finalize look at: not the shard definitions, claims, progress
// and node records, which in a job of 100,000 shards are most of its bytes.
func (n *Node) readState(ctx context.Context) (*jobState, error) {
	st := &jobState{fold: newDoneFold()}
	var sources []meta.PhaseMarker
	handle := func(kvs []*mvccpb.KeyValue) error {
		for _, kv := range kvs {
			if err := st.add(n.job, kv, &sources); err != nil {
				return err
			}
		}
		return nil
	}
	var rev int64
	for _, prefix := range []string{n.job.Spec(), n.job.Cancel(), n.job.Dir(meta.KindPhase), n.job.Dir(meta.KindFailed),
		n.job.Dir(meta.KindVerifyDone), n.job.Dir(meta.KindVerifyFailed), n.job.Dir(meta.KindStepsDone), n.job.Dir(meta.KindStepsFailed)} {
		r, err := rangePages(ctx, n.cli, prefix, rev, false, handle)
		if err != nil {
			return nil, fmt.Errorf("read job %s: %w", n.job.ID, err)
		}
		rev = r
	}
	if st.vplan != nil && st.vplan.Totals != nil && st.vplan.Skipped == "" {
		// The verify-plan leader summed the done records once, after the
		// import settled with every shard done: later phases need no
		// record of them. (A stopped job's shards may still finish after
		// that: its phases read the records.)
		st.totals = *st.vplan.Totals
	} else {
		if _, err := n.readDone(ctx, st, handle); err != nil {
			return nil, fmt.Errorf("read job %s: %w", n.job.ID, err)
		}
		st.totals = st.fold.totals()
	}
	return st, st.mergeSources(sources)
}

// ImportTotals sum the job's done records: what verify and finalize need
// of them, written once into the verify-plan marker.
type ImportTotals struct {
	Done   int                     `json:"done"`
	Rows   int64                   `json:"rows"`
	Bytes  int64                   `json:"bytes"`
	Nodes  []string                `json:"nodes"`
	Tables map[string]*TableTotals `json:"tables"` // by db.table
}

// TableTotals are a table's rows and source digest over its done shards.
type TableTotals struct {
	Rows        int64  `json:"rows"`
	DigestCount int64  `json:"digest_count"`
	DigestXOR   string `json:"digest_xor"`
	BadDigest   string `json:"bad_digest,omitempty"` // a shard's digest did not parse
}

// doneCache is the import view's fold of the job's done records, complete
// as of rev (node/donefold.go): verify-plan, verify and finalize take it,
// topped up with the records written since, instead of reading every
// record again.
type doneCache struct {
	fold *doneFold
	rev  int64
}

// seedDone keeps the import view's fold (as of rev).
func (n *Node) seedDone(f *doneFold, rev int64) {
	if f.broken != "" {
		n.log.Info("the import view's sum of the done records is not usable; the phases after the import read them", "why", f.broken)
		n.doneCache = nil
		return
	}
	n.doneCache = &doneCache{fold: f, rev: rev}
}

// readDone puts the job's done records into st.fold and returns the
// revision they are complete at. With a cache, a count of the records
// proves it complete (a done record is written once, by its claim's owner,
// and never changed; only a job's retry or removal deletes any), and
// records written since are folded in (WithMinModRev); otherwise, or if
// the count still disagrees, every record is read in pages through handle.
func (n *Node) readDone(ctx context.Context, st *jobState, handle func([]*mvccpb.KeyValue) error) (int64, error) {
	prefix := n.job.Dir(meta.KindDone)
	if c := n.doneCache; c != nil {
		n.doneCache = nil // unless it proves complete again below
		all, err := n.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return 0, err
		}
		rev := all.Header.Revision
		if all.Count > int64(c.fold.count) {
			newer, err := n.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithMinModRev(c.rev+1), clientv3.WithRev(rev))
			if err != nil {
				return 0, err
			}
			for _, kv := range newer.Kvs {
				if _, ok := n.job.Parse(string(kv.Key)); ok {
					if err := c.fold.addRaw(string(kv.Key), kv.Value); err != nil {
						return 0, err
					}
				}
			}
		}
		if all.Count == int64(c.fold.count) {
			c.rev = rev
			n.doneCache = c
			st.fold = c.fold // read-only from here on
			return rev, nil
		}
		n.log.Info("done records changed under the cache; reading them all", "cached", c.fold.count, "in_etcd", all.Count)
	}
	st.fold = newDoneFold()
	return rangePages(ctx, n.cli, prefix, 0, false, handle)
}

// add takes in one key of the job.
func (st *jobState) add(job meta.Job, kv *mvccpb.KeyValue, sources *[]meta.PhaseMarker) error {
	key := string(kv.Key)
	k, ok := job.Parse(key)
	if !ok {
		return nil
	}
	var err error
	switch {
	case k.Kind == meta.KindSpec:
		err = meta.Decode(key, kv.Value, &st.spec)
	case k.Kind == meta.KindPhase && k.Name == string(meta.PhasePlan):
		err = meta.Decode(key, kv.Value, &st.plan)
	case k.Kind == meta.KindPhase && strings.HasPrefix(k.Name, string(meta.PhasePlanSource)+"/"):
		var m meta.PhaseMarker
		err = meta.Decode(key, kv.Value, &m)
		*sources = append(*sources, m)
	case k.Kind == meta.KindPhase && k.Name == string(meta.PhasePrepare):
		err = meta.Decode(key, kv.Value, &st.prepare)
	case k.Kind == meta.KindPhase && k.Name == string(meta.PhaseVerifyPlan):
		var m meta.PhaseMarker
		if err = meta.Decode(key, kv.Value, &m); err == nil && m.Summary != nil {
			st.vplan = &VerifyPlanSummary{}
			err = meta.Decode(key, m.Summary, st.vplan)
		}
	case k.Kind == meta.KindVerifyDone:
		var d meta.VerifyDone
		err = meta.Decode(key, kv.Value, &d)
		st.vdone = append(st.vdone, d)
	case k.Kind == meta.KindVerifyFailed:
		var f meta.Failed
		err = meta.Decode(key, kv.Value, &f)
		st.vfailed = append(st.vfailed, f)
	case k.Kind == meta.KindStepsDone:
		var d meta.StepsDone
		err = meta.Decode(key, kv.Value, &d)
		st.sdone = append(st.sdone, d)
	case k.Kind == meta.KindStepsFailed:
		var f meta.Failed
		err = meta.Decode(key, kv.Value, &f)
		st.sfailed = append(st.sfailed, f)
	case k.Kind == meta.KindPhase && k.Name == string(meta.PhaseVerify):
		st.verify = &meta.PhaseMarker{}
		err = meta.Decode(key, kv.Value, st.verify)
	case k.Kind == meta.KindDone:
		err = st.fold.addRaw(key, kv.Value)
	case k.Kind == meta.KindFailed:
		var f meta.Failed
		err = meta.Decode(key, kv.Value, &f)
		st.failed = append(st.failed, f)
	case k.Kind == meta.KindCancel:
		st.cancel = &meta.CancelRequest{}
		err = meta.Decode(key, kv.Value, st.cancel)
	}
	return err
}

// mergeSources makes one plan of the sources' plans: their shards, and
// their tables (a table several sources write into once).
func (st *jobState) mergeSources(markers []meta.PhaseMarker) error {
	tables := map[string]int{}
	for _, m := range markers {
		if m.Error != "" && st.plan.Error == "" {
			st.plan.Error = m.Error
		}
		if m.Summary == nil {
			continue
		}
		var ps meta.PlanSummary
		if err := meta.Decode("plan summary", m.Summary, &ps); err != nil {
			return err
		}
		st.planSum.Shards += ps.Shards
		st.planSum.Bytes += ps.Bytes
		for _, rel := range ps.Skipped {
			st.planSum.Skipped = append(st.planSum.Skipped, filepath.Join(ps.Dir, rel))
		}
		for _, pt := range ps.Tables {
			key := pt.DB + "." + pt.Table
			i, ok := tables[key]
			if !ok {
				tables[key] = len(st.planSum.Tables)
				st.planSum.Tables = append(st.planSum.Tables, pt)
				continue
			}
			st.planSum.Tables[i].Shards += pt.Shards
			st.planSum.Tables[i].Bytes += pt.Bytes
		}
	}
	sort.Slice(st.planSum.Tables, func(i, j int) bool {
		a, b := st.planSum.Tables[i], st.planSum.Tables[j]
		return a.DB+"."+a.Table < b.DB+"."+b.Table
	})
	return nil
}

// VerifySummary is the verify phase's marker summary.
type VerifySummary struct {
	Skipped string             `json:"skipped,omitempty"`
	Tables  []meta.TableResult `json:"tables,omitempty"`
}

// verify compares each table of the target with the source: by content
// digest (the source digest the shards committed, against the digest peers
// read back in the verify ranges) or by row count, as verify-plan decided.
func (n *Node) verify(ctx context.Context, l *election.Leader) (any, error) {
	st, err := n.readState(ctx)
	if err != nil {
		return nil, err
	}
	if reason := st.importUnfinished(); reason != "" {
		return VerifySummary{Skipped: reason}, nil
	}
	if st.totals.Done != st.planSum.Shards {
		return nil, fmt.Errorf("verify: %d of %d shards done", st.totals.Done, st.planSum.Shards)
	}
	if st.vplan == nil {
		return nil, fmt.Errorf("verify: the verify-plan marker has no summary")
	}
	if len(st.vfailed) > 0 {
		f := st.vfailed[0]
		return VerifySummary{}, election.Fail(fmt.Errorf("reading back %s failed: %s", f.File, f.Reason))
	}
	if len(st.vdone) < st.vplan.Ranges {
		return nil, fmt.Errorf("verify: %d of %d verify ranges done", len(st.vdone), st.vplan.Ranges)
	}
	modes := map[string]VerifyPlanTable{}
	for _, vt := range st.vplan.Tables {
		modes[vt.DB+"."+vt.Table] = vt
	}
	src := map[string]*checksum.Digest{}
	for key, tt := range st.totals.Tables {
		if tt.BadDigest != "" {
			return nil, fmt.Errorf("verify: digest of a shard of %s: %s", key, tt.BadDigest)
		}
		x, err := checksum.ParseHex(tt.DigestXOR)
		if err != nil {
			return nil, fmt.Errorf("verify: digest of %s: %w", key, err)
		}
		add(src, key, checksum.Digest{Count: tt.DigestCount, XOR: x})
	}
	dst := map[string]*checksum.Digest{}
	// The verify step of each table: its ranges' read-back, summed.
	readSecs, readRanges := map[string]float64{}, map[string]int{}
	for _, d := range st.vdone {
		readSecs[d.DB+"."+d.Table] += d.Seconds
		readRanges[d.DB+"."+d.Table]++
	}
	for _, d := range st.vdone {
		x, err := checksum.ParseHex(d.DigestXOR)
		if err != nil {
			return nil, fmt.Errorf("verify: read-back digest of %s.%s: %w", d.DB, d.Table, err)
		}
		add(dst, d.DB+"."+d.Table, checksum.Digest{Count: d.DigestCount, XOR: x})
	}
	checksums := map[string]*meta.AdminChecksum{}
	for _, d := range st.sdone {
		if d.AdminChecksum != nil {
			checksums[d.DB+"."+d.Table] = d.AdminChecksum
		}
	}
	dup := n.spec.Import.OnDuplicate
	var sum VerifySummary
	var bad []string
	for _, pt := range st.planSum.Tables {
		key := pt.DB + "." + pt.Table
		vt := modes[key]
		r := meta.TableResult{DB: pt.DB, Table: pt.Table, Mode: vt.Mode, Note: vt.Note, Expected: pt.InitialRows + st.expectedRows(pt)}
		switch vt.Mode {
		case meta.VerifyOff:
			r.OK, r.Actual, r.Note = true, -1, "verify.mode = off"
			sum.Tables = append(sum.Tables, r)
			continue
		case meta.VerifyDigest:
			s, t := digestOf(src, key), digestOf(dst, key)
			r.Actual, r.ExpectedDigest, r.ActualDigest = t.Count, s.Hex(), t.Hex()
			r.OK = s == t
		default:
			q := "SELECT COUNT(*) FROM " + quoteIdent(pt.DB) + "." + quoteIdent(pt.Table)
			if err := n.target.DB().QueryRowContext(ctx, q).Scan(&r.Actual); err != nil {
				return nil, fmt.Errorf("verify: count %s: %w", key, err)
			}
			r.OK = r.Actual == r.Expected
		}
		if k := readRanges[key]; k > 0 {
			r.Steps = append(r.Steps, meta.StepResult{Step: meta.StepVerify, Seconds: readSecs[key],
				Detail: fmt.Sprintf("%d range(s) read back; seconds summed over them", k)})
		}
		if n.target.IsTiDB() {
			// The table's admin-checksum step read it while others still
			// imported; a table without one (steps from an older storm)
			// is read now.
			r.AdminChecksum = checksums[key]
			if r.AdminChecksum == nil {
				r.AdminChecksum = n.adminChecksum(ctx, pt.DB, pt.Table) // node/tidbchecksum.go
			}
		}
		if dup != "error" && dup != "" && r.Actual < r.Expected {
			// Duplicates replaced or skipped leave fewer rows than were
			// read, and a digest that can't match the source's.
			r.Duplicates = r.Expected - r.Actual
			r.OK = true
			r.Note = strings.TrimPrefix(r.Note+fmt.Sprintf("; on-duplicate=%s: %d source rows were duplicates, so only the row count is checked", dup, r.Duplicates), "; ")
		}
		if !r.OK {
			msg := fmt.Sprintf("%s: expected %d rows, found %d", key, r.Expected, r.Actual)
			if r.Mode == meta.VerifyDigest {
				msg += fmt.Sprintf("; digest expected %s, found %s", r.ExpectedDigest, r.ActualDigest)
			}
			bad = append(bad, msg)
		}
		sum.Tables = append(sum.Tables, r)
	}
	if len(bad) > 0 {
		return sum, election.Fail(fmt.Errorf("the target differs from the source: %s", strings.Join(bad, "; ")))
	}
	return sum, nil
}

// addSteps puts each table's step results in its barrier entry; a table
// whose steps failed gets an entry saying so if verify gave it none.
func (st *jobState) addSteps(b *meta.Barrier) {
	at := map[string]int{}
	for i, t := range b.Tables {
		at[t.DB+"."+t.Table] = i
	}
	for _, d := range st.sdone {
		key := d.DB + "." + d.Table
		i, ok := at[key]
		if !ok {
			at[key] = len(b.Tables)
			i = len(b.Tables)
			b.Tables = append(b.Tables, meta.TableResult{DB: d.DB, Table: d.Table, OK: true, Note: "not verified"})
		}
		b.Tables[i].Steps = append(append([]meta.StepResult(nil), d.Steps...), b.Tables[i].Steps...)
	}
	for _, f := range st.sfailed {
		if i, ok := at[f.Shard]; ok {
			b.Tables[i].OK = false
			b.Tables[i].Note = strings.TrimPrefix(b.Tables[i].Note+"; steps failed: "+f.Reason, "; ")
			continue
		}
		db, table, _ := strings.Cut(f.Shard, ".")
		b.Tables = append(b.Tables, meta.TableResult{DB: db, Table: table, Note: "steps failed: " + f.Reason})
	}
	sort.Slice(b.Tables, func(i, j int) bool {
		return b.Tables[i].DB+"."+b.Tables[i].Table < b.Tables[j].DB+"."+b.Tables[j].Table
	})
}

func add(m map[string]*checksum.Digest, key string, d checksum.Digest) {
	if m[key] == nil {
		m[key] = &checksum.Digest{}
	}
	m[key].Merge(d)
}

func digestOf(m map[string]*checksum.Digest, key string) checksum.Digest {
	if d := m[key]; d != nil {
		return *d
	}
	return checksum.Digest{}
}

// maxBarrierSkipped is how many skipped files the barrier names.
const maxBarrierSkipped = 1000

// finalize writes the barrier: the one signal that the whole parallel
// import has ended, and how.
func (n *Node) finalize(ctx context.Context, l *election.Leader) (any, error) {
	st, err := n.readState(ctx)
	if err != nil {
		return nil, err
	}
	tikvNote, err := n.restoreTiKV(ctx, l)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	b := meta.Barrier{TiKV: tikvNote, Job: n.job.ID, Status: meta.StatusSucceeded, Shards: st.planSum.Shards,
		Started: st.spec.CreatedAt, Finished: now, Seconds: now.Sub(st.spec.CreatedAt).Seconds(), By: n.cfg.NodeID}
	nodes := map[string]bool{st.plan.By: true, n.cfg.NodeID: true}
	b.Rows, b.Bytes = st.totals.Rows, st.totals.Bytes
	for _, id := range st.totals.Nodes {
		nodes[id] = true
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
	for _, t := range st.planSum.Tables {
		if t.PreSplit != nil {
			b.PreSplit = append(b.PreSplit, *t.PreSplit)
		}
	}
	st.addSteps(&b)
	for _, t := range b.Tables {
		if t.Mode == meta.VerifyDigest {
			b.RowHash = n.rowHash.Name()
		}
	}
	if err := n.target.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM "+sink.MetaDB+".rejected WHERE job = ?", n.job.ID).Scan(&b.Rejected); err != nil {
		return nil, fmt.Errorf("count rejected rows: %w", err)
	}
	sort.Slice(st.failed, func(i, j int) bool { return st.failed[i].Shard < st.failed[j].Shard })
	switch {
	case st.cancel != nil:
		b.Status, b.Reason = meta.StatusCancelled, "cancelled by "+st.cancel.By
		if st.cancel.Reason != "" {
			b.Reason += ": " + st.cancel.Reason
		}
	case st.plan.Error != "":
		b.Status, b.Reason = meta.StatusFailed, "plan: "+st.plan.Error
	case st.prepare.Error != "" && len(st.failed) == 0:
		b.Status, b.Reason = meta.StatusFailed, "prepare: "+st.prepare.Error
	case len(st.failed) > 0:
		f := st.failed[0]
		b.Status = meta.StatusFailed
		b.Reason = fmt.Sprintf("%d shard(s) failed; first: %s", len(st.failed), f.Reason)
	case len(st.sfailed) > 0:
		f := st.sfailed[0]
		b.Status = meta.StatusFailed
		b.Reason = fmt.Sprintf("the steps of %d table(s) failed; first: %s", len(st.sfailed), f.Reason)
		b.Failed = append(b.Failed, st.sfailed...)
	case st.verify != nil && st.verify.Error != "":
		b.Status, b.Reason = meta.StatusFailed, "verify: "+st.verify.Error
	}
	b.Failed = append(st.failed[:min(len(st.failed), 20):min(len(st.failed), 20)], b.Failed...)
	// One etcd value holds the barrier: a dump of many thousand
	// skipped files is named in part (storm status lists them all).
	b.Skipped = st.planSum.Skipped
	if len(b.Skipped) > maxBarrierSkipped {
		b.Skipped = append(b.Skipped[:maxBarrierSkipped:maxBarrierSkipped], fmt.Sprintf("... and %d more", len(b.Skipped)-maxBarrierSkipped))
	}
	for _, t := range st.planSum.Tables {
		if t.Shards == 0 {
			b.NoData = append(b.NoData, t.DB+"."+t.Table)
		}
	}
	for id := range nodes {
		if id != "" {
			b.Nodes = append(b.Nodes, id)
		}
	}
	sort.Strings(b.Nodes)
	absent := clientv3.Compare(clientv3.CreateRevision(n.job.Barrier()), "=", 0)
	wrote, err := l.CommitIf(ctx, []clientv3.Cmp{absent}, clientv3.OpPut(n.job.Barrier(), meta.Encode(b)))
	if err != nil {
		return nil, fmt.Errorf("write barrier: %w", err)
	}
	if wrote {
		n.log.Info("barrier written", "status", b.Status, "rows", b.Rows, "reason", b.Reason)
	} else {
		n.log.Info("barrier already written by an earlier finalize leader")
	}
	return map[string]any{"status": b.Status}, nil
}
