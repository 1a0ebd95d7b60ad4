package e2e

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/internal/etcdserver"
	"storm/internal/faultproxy"
	"storm/internal/gendump"
	"storm/meta"
)

// The fault suite's harness: jobs with many small shards and short leases,
// so that takeovers happen within seconds, and read-outs of who holds what
// in etcd right now.

// faultDefaults make many shards, small batches and quick takeovers.
var faultDefaults = map[string]string{
	"etcd.lease-ttl":    "2",
	"import.shard-size": "65536",
	"import.batch-size": "16384",
}

// newFaultEnv is newEnv on a fresh embedded etcd with the fault defaults.
func newFaultEnv(t *testing.T, gen gendump.Options) *env {
	t.Helper()
	srv, cli := etcdserver.StartT(t)
	return newFaultEnvOn(t, gen, []string{srv.ClientURL}, cli)
}

// newFaultEnvOn is newFaultEnv on an etcd the caller runs. The target
// database of the job is dropped first, with the job's checkpoints, so that
// `go test -count=N` starts every run from an empty target.
func newFaultEnvOn(t *testing.T, gen gendump.Options, endpoints []string, cli *clientv3.Client) *env {
	t.Helper()
	e := newEnvOn(t, gen, endpoints, cli)
	for k, v := range faultDefaults {
		e.extra[k] = v
	}
	db := e.db()
	mustExec(t, db, "DROP DATABASE IF EXISTS `"+e.gen.DB+"`")
	if _, err := db.Exec("DELETE FROM storm_meta.checkpoints WHERE job = ?", e.job.ID); err != nil &&
		!strings.Contains(err.Error(), "doesn't exist") {
		t.Fatalf("clear checkpoints of %s: %v", e.job.ID, err)
	}
	return e
}

// proxyTo starts a faultproxy in front of an etcd client URL and returns it
// with the URL the nodes dial instead.
func proxyTo(t *testing.T, clientURL string) (*faultproxy.Proxy, string) {
	t.Helper()
	u, err := url.Parse(clientURL)
	if err != nil {
		t.Fatal(err)
	}
	px, err := faultproxy.Start(u.Host)
	if err != nil {
		t.Fatalf("faultproxy: %v", err)
	}
	t.Cleanup(func() { px.Close() })
	return px, "http://" + px.Addr()
}

func (e *env) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

// get reads a prefix of the job's keys, failing the test on error.
func (e *env) get(key string, opts ...clientv3.OpOption) *clientv3.GetResponse {
	e.t.Helper()
	ctx, cancel := e.ctx()
	defer cancel()
	resp, err := e.etcd.Get(ctx, key, opts...)
	if err != nil {
		e.t.Fatalf("etcd get %s: %v", key, err)
	}
	return resp
}

// leases maps each registered node id to its session's lease. An id whose
// process was killed keeps its key until the lease runs out, so a claim or
// an election key belongs to a live incarnation only when the leases match;
// nodes.leases keeps only the processes running now.
func (e *env) leases() map[string]clientv3.LeaseID {
	out := map[string]clientv3.LeaseID{}
	for id, info := range e.registered() {
		out[id] = clientv3.LeaseID(info.Lease)
	}
	return out
}

func (e *env) registered() map[string]meta.NodeInfo {
	out := map[string]meta.NodeInfo{}
	for _, kv := range e.get(e.job.Dir(meta.KindNodes), clientv3.WithPrefix()).Kvs {
		k, ok := e.job.Parse(string(kv.Key))
		var info meta.NodeInfo
		if ok && meta.Decode(string(kv.Key), kv.Value, &info) == nil {
			info.Lease = kv.Lease
			out[k.Name] = info
		}
	}
	return out
}

// liveClaims counts the shards each node holds on the given leases.
func (e *env) liveClaims(leases map[string]clientv3.LeaseID) map[string]int {
	out := map[string]int{}
	for _, kv := range e.get(e.job.Dir(meta.KindClaims), clientv3.WithPrefix()).Kvs {
		var c meta.Claim
		if meta.Decode(string(kv.Key), kv.Value, &c) == nil && leases[c.Node] == clientv3.LeaseID(kv.Lease) {
			out[c.Node]++
		}
	}
	return out
}

// liveLeader returns a node that leads, on the given leases, a phase that
// has no marker yet and that match accepts (nil: any), and the phase; "" if
// none does right now. The leader of an election is its campaigner with the
// lowest create revision; its key is election/<phase>/<lease> (a phase
// name may hold slashes) and its value the node id.
func (e *env) liveLeader(leases map[string]clientv3.LeaseID, match func(meta.Phase) bool) (node string, phase meta.Phase) {
	resp := e.get(e.job.Dir(meta.KindElection), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	markers := map[string]bool{}
	for _, kv := range e.get(e.job.Dir(meta.KindPhase), clientv3.WithPrefix(), clientv3.WithKeysOnly()).Kvs {
		if k, ok := e.job.Parse(string(kv.Key)); ok {
			markers[k.Name] = true
		}
	}
	seen := map[string]bool{}
	for _, kv := range resp.Kvs {
		k, ok := e.job.Parse(string(kv.Key))
		i := strings.LastIndex(k.Name, "/")
		if !ok || i < 0 {
			continue
		}
		p := k.Name[:i]
		if seen[p] {
			continue // not the first campaigner
		}
		seen[p] = true
		if markers[p] || (match != nil && !match(meta.Phase(p))) {
			continue
		}
		id := string(kv.Value)
		if leases[id] == clientv3.LeaseID(kv.Lease) {
			return id, meta.Phase(p)
		}
	}
	return "", ""
}

// planning: the plan phase and the phases that plan one source each.
func planning(p meta.Phase) bool {
	return p == meta.PhasePlan || strings.HasPrefix(string(p), string(meta.PhasePlan)+"-")
}

// afterImport: the leader phases after the import (verify, finalize).
func afterImport(p meta.Phase) bool { return !planning(p) && p != meta.PhasePrepare }

// shardCount is the number of planned shards, 0 before the plan marker.
func (e *env) shardCount() int {
	if e.get(e.job.PhaseMarker(meta.PhasePlan), clientv3.WithCountOnly()).Count == 0 {
		return 0
	}
	return e.count(meta.KindShards)
}

// barrierOnce reads the barrier and fails the test unless it exists and was
// written exactly once (its key's version is 1).
func (e *env) barrierOnce() meta.Barrier {
	e.t.Helper()
	resp := e.get(e.job.Barrier())
	if len(resp.Kvs) == 0 {
		e.t.Fatalf("no barrier at %s", e.job.Barrier())
	}
	kv := resp.Kvs[0]
	if kv.Version != 1 {
		e.t.Errorf("barrier written %d times (version %d), want once", kv.Version, kv.Version)
	}
	var b meta.Barrier
	if err := meta.Decode(string(kv.Key), kv.Value, &b); err != nil {
		e.t.Fatal(err)
	}
	return b
}

// waitAll waits for every process and checks its exit code.
func (e *env) waitAll(want int, timeout time.Duration, procs ...*proc) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for _, p := range procs {
		if code := p.wait(e.t, time.Until(deadline)); code != want {
			e.t.Fatalf("%s exited %d, want %d; log:\n%s", p.id, code, want, tail(p.log(), 40))
		}
	}
}

// checkSucceeded is the end of every scenario that must succeed: the
// barrier once, succeeded, over every shard; no claim left; every row of
// the source in the target, and nothing else.
func (e *env) checkSucceeded() meta.Barrier {
	e.t.Helper()
	b := e.barrierOnce()
	if b.Status != meta.StatusSucceeded {
		e.t.Fatalf("barrier %s: %s", b.Status, b.Reason)
	}
	if done := e.count(meta.KindDone); b.Shards != done || done == 0 {
		e.t.Errorf("barrier says %d shards, %d are done", b.Shards, done)
	}
	if n := e.count(meta.KindClaims); n != 0 {
		e.t.Errorf("%d shard(s) still claimed after the barrier", n)
	}
	for _, r := range b.Tables {
		if !r.OK {
			e.t.Errorf("table result %+v", r)
		}
	}
	e.checkTarget()
	return b
}

// waitingForLocks counts the database sessions that wait for a table lock
// (lockTables) inside a statement.
func (e *env) waitingForLocks() int {
	e.t.Helper()
	var n int
	err := e.db().QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table%lock'").Scan(&n)
	if err != nil {
		e.t.Fatalf("processlist: %v", err)
	}
	return n
}

// revision is etcd's current revision.
func (e *env) revision() int64 {
	return e.get("/storm-rev", clientv3.WithCountOnly()).Header.Revision
}

// compact compacts etcd to its current revision, physically, so that every
// watch that resumes from an older revision gets ErrCompacted.
func (e *env) compact() int64 {
	e.t.Helper()
	rev := e.revision()
	ctx, cancel := e.ctx()
	defer cancel()
	if _, err := e.etcd.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		e.t.Fatalf("compact to %d: %v", rev, err)
	}
	return rev
}

// signal sends sig to a running process.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, p.id, err)
	}
}

// nodes is a set of storm nodes of one job, by id, the latest incarnation
// of each.
type nodes struct {
	e     *env
	cfg   map[string]string // node id -> config file
	procs map[string]*proc
}

func (e *env) startNodes(cfg map[string]string) *nodes {
	ns := &nodes{e: e, cfg: cfg, procs: map[string]*proc{}}
	for _, id := range ns.ids() {
		ns.procs[id] = e.node(id, cfg[id])
	}
	return ns
}

func (ns *nodes) ids() []string {
	var ids []string
	for id := range ns.cfg {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (ns *nodes) all() []*proc {
	var ps []*proc
	for _, id := range ns.ids() {
		ps = append(ps, ns.procs[id])
	}
	return ps
}

// leases maps the id of every node process running now to its session's
// lease, once it has registered: a killed incarnation's key, still there
// until its lease runs out, names another pid.
func (ns *nodes) leases() map[string]clientv3.LeaseID {
	out := map[string]clientv3.LeaseID{}
	for id, info := range ns.e.registered() {
		p := ns.procs[id]
		if p == nil || p.cmd.Process.Pid != info.PID {
			continue
		}
		select {
		case <-p.done:
		default:
			out[id] = clientv3.LeaseID(info.Lease)
		}
	}
	return out
}

// restart starts a node again with its id and config.
func (ns *nodes) restart(id string) {
	ns.procs[id] = ns.e.node(id, ns.cfg[id])
}

// sameConfig gives every id the same config file.
func sameConfig(cfg string, ids ...string) map[string]string {
	m := map[string]string{}
	for _, id := range ids {
		m[id] = cfg
	}
	return m
}

// summary counts values for a log line: "a=2 b=1".
func summary(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
