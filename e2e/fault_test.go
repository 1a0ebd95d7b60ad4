package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/internal/etcdcluster"
	"storm/internal/etcdserver"
	"storm/internal/faultproxy"
	"storm/internal/gendump"
	"storm/meta"
)

// The fault suite: real storm processes under SIGKILL, a partition from
// etcd, a database restart, an etcd member killed and etcd compacted under
// them, and a cancel. Every scenario ends with the barrier written exactly
// once, every node's exit code, and (when the job must succeed) every row of
// the target compared with the source.

// faultSeed seeds the randomized scenarios; STORM_FAULT_SEED replays one.
func faultSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("STORM_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("STORM_FAULT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay: STORM_FAULT_SEED=%d)", seed, seed)
	return seed
}

type killRound struct {
	target string // plan-leader, claims, any, all, end-leader, end-any
	node   string
	detail string
	at     string // shards done when killed
}

// TestFaultKillRounds SIGKILLs nodes over several jobs, many times per job:
// the plan leader, nodes holding claims, nodes at any moment, the leader of
// a verify or finalize phase. Every killed node is started again with its
// id. Every job must succeed with exactly the source rows.
func TestFaultKillRounds(t *testing.T) {
	seed := faultSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x5703))
	start := time.Now()
	const minRounds, maxJobs = 20, 8
	var rounds []killRound
	jobs := 0
	for j := 0; j < maxJobs && (len(rounds) < minRounds || j < 2); j++ {
		jobs++
		if !t.Run(fmt.Sprintf("job%d", j), func(t *testing.T) { rounds = append(rounds, killJob(t, rng, j)...) }) {
			break
		}
	}
	by := map[string]int{}
	for _, r := range rounds {
		by[r.target]++
	}
	t.Logf("seed %d: %d kill rounds over %d jobs in %s (%s)", seed, len(rounds), jobs,
		time.Since(start).Round(time.Second), summary(by))
	if len(rounds) < minRounds && !t.Failed() {
		t.Errorf("only %d kill rounds, want at least %d", len(rounds), minRounds)
	}
}

// killer kills and restarts the nodes of one job.
type killer struct {
	t      *testing.T
	e      *env
	rng    *rand.Rand
	ns     *nodes
	rounds []killRound
}

func killJob(t *testing.T, rng *rand.Rand, j int) []killRound {
	gen := gendump.Options{
		Rows:          30_000 + rng.IntN(40_001),
		Format:        []string{"csv", "mixed"}[rng.IntN(2)],
		FilesPerTable: 1 + rng.IntN(2),
		Header:        rng.IntN(2) == 0,
		Seed:          int64(j + 1),
	}
	e := newFaultEnv(t, gen)
	k := &killer{t: t, e: e, rng: rng}
	start := time.Now()

	// Even jobs hold the plan leader inside its phase with a table lock,
	// so that it is killed mid-plan for sure; odd jobs hold the
	// verification the same way, on a table whose shards are all done, and
	// kill its leader (or a node, if no leader reads the table). The other
	// leader is killed if caught in time.
	stallPlan := j%2 == 0
	var unlock func()
	if stallPlan {
		e.createTables()
		unlock = e.lockTables()
	}
	k.ns = e.startNodes(sameConfig(e.config(nil), "n1", "n2", "n3"))
	if stallPlan {
		k.killLeader("plan-leader", 30*time.Second, planning)
		unlock()
	} else {
		k.killLeader("plan-leader", 3*time.Second, planning)
	}

	for n := 0; n < 4 && !k.importDone(); n++ {
		time.Sleep(time.Duration(k.rng.IntN(1000)) * time.Millisecond) // a random moment
		switch r := k.rng.IntN(20); {
		case r < 13:
			k.killClaimHolder()
		case r < 19:
			k.killAny()
		default:
			k.killAll()
		}
	}

	if !stallPlan {
		unlock = k.lockDoneTable()
	}
	e.waitFor("every shard done", 90*time.Second, k.importDone)
	if stallPlan || unlock == nil {
		k.killLeader("end-leader", 3*time.Second, afterImport)
	} else {
		k.killVerifier()
		unlock()
	}

	e.waitAll(0, 2*time.Minute, k.ns.all()...)
	b := e.checkSucceeded()
	var kills []string
	for _, r := range k.rounds {
		kills = append(kills, fmt.Sprintf("%s %s (%s, %s done)", r.target, r.node, r.detail, r.at))
	}
	t.Logf("job %d: %d rows in %d shards (%s, %d file(s)/table), %d kills in %s, exact rows: %s",
		j, b.Rows, b.Shards, gen.Format, gen.FilesPerTable, len(k.rounds), time.Since(start).Round(100*time.Millisecond),
		strings.Join(kills, "; "))
	return k.rounds
}

func (k *killer) importDone() bool {
	shards := k.e.shardCount()
	return shards > 0 && k.e.count(meta.KindDone) == shards
}

func (k *killer) progress() string {
	return fmt.Sprintf("%d/%d", k.e.count(meta.KindDone), k.e.shardCount())
}

// kill SIGKILLs a node and starts it again with its id after a random
// pause; the new process waits out the old lease before it registers.
func (k *killer) kill(target, id, detail string) {
	at := k.progress()
	p := k.ns.procs[id]
	select {
	case <-p.done:
		return // it saw the barrier and left
	default:
	}
	p.kill()
	k.rounds = append(k.rounds, killRound{target: target, node: id, detail: detail, at: at})
	time.Sleep(time.Duration(k.rng.IntN(500)) * time.Millisecond)
	k.ns.restart(id)
}

// killLeader kills the live leader of an unfinished phase that match
// accepts as soon as there is one, for up to timeout. It reports whether it
// found one before the job ended.
func (k *killer) killLeader(target string, timeout time.Duration, match func(meta.Phase) bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && k.e.barrier() == nil {
		if id, p := k.e.liveLeader(k.ns.leases(), match); id != "" {
			k.kill(target, id, "leading "+string(p))
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// killVerifier waits, with a done table locked, until the verification
// reads it and waits for the lock, and kills the leader of the phase
// after the import that is unfinished then, or a random node if that part
// of the verification runs in no leader.
func (k *killer) killVerifier() {
	var id string
	var p meta.Phase
	k.e.waitFor("the verification to wait for the locked table", 30*time.Second, func() bool {
		id, p = k.e.liveLeader(k.ns.leases(), afterImport)
		return k.e.waitingForLocks() > 0 || k.e.barrier() != nil
	})
	switch {
	case k.e.barrier() != nil:
	case id != "":
		k.kill("end-leader", id, "leading "+string(p)+", reading a locked table")
	default:
		ids := k.ns.ids()
		id = ids[k.rng.IntN(len(ids))]
		k.kill("end-any", id, "verifying, a locked table")
	}
}

// killClaimHolder kills a random node among those holding shards.
func (k *killer) killClaimHolder() {
	var holders []string
	var held map[string]int
	k.e.waitFor("a node to hold shards", 30*time.Second, func() bool {
		if k.importDone() {
			return true
		}
		held = k.e.liveClaims(k.ns.leases())
		holders = holders[:0]
		for _, id := range k.ns.ids() {
			if held[id] > 0 {
				holders = append(holders, id)
			}
		}
		return len(holders) > 0
	})
	if len(holders) == 0 {
		return
	}
	id := holders[k.rng.IntN(len(holders))]
	k.kill("claims", id, fmt.Sprintf("holding %d shard(s)", held[id]))
}

// killAll kills every node at once, as a power cut would, and starts them
// all again.
func (k *killer) killAll() {
	at := k.progress()
	for _, id := range k.ns.ids() {
		k.ns.procs[id].kill()
	}
	k.rounds = append(k.rounds, killRound{target: "all", node: "n1,n2,n3", detail: "every node", at: at})
	for _, id := range k.ns.ids() {
		k.ns.restart(id)
	}
}

// killAny kills a random node, whatever it is doing.
func (k *killer) killAny() {
	ids := k.ns.ids()
	id := ids[k.rng.IntN(len(ids))]
	detail := "registering"
	if leases := k.ns.leases(); leases[id] != 0 {
		detail = fmt.Sprintf("holding %d shard(s)", k.e.liveClaims(leases)[id])
		if l, p := k.e.liveLeader(leases, nil); l == id {
			detail = "leading " + string(p)
		}
	}
	k.kill("any", id, detail)
}

// lockDoneTable write-locks a table whose shards are all done while other
// shards are still in work, so that the verify phase that follows waits
// inside its leader for the lock. nil if the import ended first.
func (k *killer) lockDoneTable() (unlock func()) { return k.e.lockDoneTable() }

func (e *env) lockDoneTable() (unlock func()) {
	var table string
	e.waitFor("a table to be fully imported", 90*time.Second, func() bool {
		if shards := e.shardCount(); shards > 0 && e.count(meta.KindDone) == shards {
			return true
		}
		table = e.doneTable()
		return table != ""
	})
	if table == "" {
		return nil
	}
	return e.lockTables(table)
}

// doneTable names a table all of whose shards are done, "" if none is.
func (e *env) doneTable() string {
	shards := map[string]int{}
	of := map[string]string{}
	for _, kv := range e.get(e.job.Dir(meta.KindShards), clientv3.WithPrefix()).Kvs {
		var s meta.Shard
		if meta.Decode(string(kv.Key), kv.Value, &s) == nil {
			shards[s.Table]++
			of[s.ID] = s.Table
		}
	}
	done := map[string]int{}
	for _, kv := range e.get(e.job.Dir(meta.KindDone), clientv3.WithPrefix(), clientv3.WithKeysOnly()).Kvs {
		if k, ok := e.job.Parse(string(kv.Key)); ok {
			done[of[k.Name]]++
		}
	}
	for t, n := range shards {
		if done[t] == n {
			return t
		}
	}
	return ""
}

// createTables creates the job's database and tables from the dump's
// schema files, as the plan would.
func (e *env) createTables() {
	e.t.Helper()
	conn, err := e.db().Conn(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	exec := func(q string) {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			e.t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE DATABASE `" + e.gen.DB + "`")
	exec("USE `" + e.gen.DB + "`")
	for _, ti := range gendump.Tables(e.gen) {
		schema, err := os.ReadFile(filepath.Join(e.gen.Dir, e.gen.DB+"."+ti.Name+"-schema.sql"))
		if err != nil {
			e.t.Fatal(err)
		}
		exec(string(schema))
	}
}

// lockTables holds a WRITE lock on tables of the job (all if none are
// named), so that the plan's emptiness check and the verify's read-back
// wait inside their phase; unlock releases it.
func (e *env) lockTables(tables ...string) (unlock func()) {
	e.t.Helper()
	conn, err := e.db().Conn(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if len(tables) == 0 {
		for _, ti := range gendump.Tables(e.gen) {
			tables = append(tables, ti.Name)
		}
	}
	var names []string
	for _, t := range tables {
		names = append(names, "`"+e.gen.DB+"`.`"+t+"` WRITE")
	}
	if _, err := conn.ExecContext(context.Background(), "LOCK TABLES "+strings.Join(names, ", ")); err != nil {
		conn.Close()
		e.t.Fatalf("lock tables: %v", err)
	}
	var once bool
	unlock = func() {
		if once {
			return
		}
		once = true
		_, _ = conn.ExecContext(context.Background(), "UNLOCK TABLES")
		conn.Close()
	}
	e.t.Cleanup(unlock)
	return unlock
}

// TestFaultPartitionFromEtcd cuts n1 off from etcd (it reaches etcd
// through a proxy; the database stays reachable) while it holds shards.
// Its lease runs out, the peers take its shards over, and whatever n1 still
// tries to commit is fenced; when the partition heals n1 notices it lost its
// session, stops its workers, joins again and exits 0 with the others.
func TestFaultPartitionFromEtcd(t *testing.T) {
	srv, cli := etcdserver.StartT(t)
	px, via := proxyTo(t, srv.ClientURL)
	e := newFaultEnvOn(t, gendump.Options{Rows: 200_000, Format: "csv", FilesPerTable: 2, Header: true},
		[]string{srv.ClientURL}, cli)
	direct := e.config(nil)
	ns := e.startNodes(map[string]string{
		"n1": e.config(map[string]string{"etcd.endpoints": tomlStrings([]string{via})}),
		"n2": direct,
		"n3": direct,
	})
	e.waitFor("n1 to hold shards", 60*time.Second, func() bool {
		return e.count(meta.KindDone) >= 2 && e.liveClaims(ns.leases())["n1"] > 0
	})
	held := e.claimsOf("n1")
	px.Block()
	t.Logf("partitioned n1 from etcd while it held %v (%d/%d shards done)", held, e.count(meta.KindDone), e.shardCount())

	e.waitFor("n1's lease to run out", 30*time.Second, func() bool {
		_, live := e.leases()["n1"]
		return !live
	})
	e.waitFor("the peers to take n1's shards over", 60*time.Second, func() bool {
		resp := e.get(e.job.Dir(meta.KindClaims), clientv3.WithPrefix())
		owner := map[string]string{}
		for _, kv := range resp.Kvs {
			var c meta.Claim
			if meta.Decode(string(kv.Key), kv.Value, &c) == nil {
				k, _ := e.job.Parse(string(kv.Key))
				owner[k.Name] = c.Node
			}
		}
		for _, id := range held {
			done := e.get(e.job.Done(id), clientv3.WithCountOnly()).Count > 0
			if !done && (owner[id] == "" || owner[id] == "n1") {
				return false
			}
		}
		return true
	})
	finished := e.barrier() != nil
	px.Heal()
	t.Logf("healed with %d/%d shards done; job finished while n1 was cut off: %v", e.count(meta.KindDone), e.shardCount(), finished)
	e.waitFor("n1 to notice it lost its session", 30*time.Second, func() bool {
		return strings.Contains(ns.procs["n1"].log(), "lost the etcd session")
	})

	e.waitAll(0, 2*time.Minute, ns.all()...)
	e.checkSucceeded()
	log := ns.procs["n1"].log()
	var takeovers int
	for _, id := range []string{"n2", "n3"} {
		l := ns.procs[id].log()
		takeovers += strings.Count(l, "resuming shard from checkpoint") + strings.Count(l, "already committed by a previous owner")
	}
	t.Logf("n1 rejoined %d time(s); peers resumed %d shard(s) from a checkpoint; n1 fenced %d batch(es)",
		strings.Count(log, "joined job")-1, takeovers, strings.Count(log, "taken over by another node"))
}

// TestFaultPausedNodeFenced freezes n1 (SIGSTOP, as a long GC pause or a
// frozen VM would) while it holds shards, until its lease has run out and
// a peer owns its shards; then lets it run on. Whatever it had in flight
// must not land twice.
func TestFaultPausedNodeFenced(t *testing.T) {
	e := newFaultEnv(t, gendump.Options{Rows: 60_000, Format: "csv", FilesPerTable: 2, Header: true})
	ns := e.startNodes(sameConfig(e.config(nil), "n1", "n2", "n3"))
	e.waitFor("n1 to hold shards", 60*time.Second, func() bool {
		return e.count(meta.KindDone) >= 2 && e.liveClaims(ns.leases())["n1"] > 0
	})
	n1 := ns.procs["n1"]
	held := e.claimsOf("n1")
	n1.signal(t, syscall.SIGSTOP)
	t.Logf("froze n1 while it held %v", held)
	e.waitFor("n1's lease to run out and its shards to move", 60*time.Second, func() bool {
		if _, live := e.leases()["n1"]; live {
			return false
		}
		return len(e.claimsOf("n1")) == 0
	})
	n1.signal(t, syscall.SIGCONT)
	e.waitAll(0, 2*time.Minute, ns.all()...)
	e.checkSucceeded()
	if !strings.Contains(n1.log(), "lost the etcd session") {
		t.Errorf("n1 did not notice it lost its session:\n%s", tail(n1.log(), 30))
	}
	t.Logf("n1 fenced %d batch(es) after the pause", strings.Count(n1.log(), "taken over by another node"))
}

// TestFaultDatabaseRestart kills the target database mid-import and starts
// it again on the same port after a pause. Workers retry with backoff and
// resume from their checkpoints.
func TestFaultDatabaseRestart(t *testing.T) {
	e := newFaultEnv(t, gendump.Options{Rows: 60_000, Format: "mixed", FilesPerTable: 2, Header: true})
	ns := e.startNodes(sameConfig(e.config(nil), "n1", "n2", "n3"))
	e.waitFor("shards in work", 60*time.Second, func() bool {
		c := e.liveClaims(ns.leases())
		return e.count(meta.KindDone) >= 3 && c["n1"]+c["n2"]+c["n3"] > 0
	})
	at := fmt.Sprintf("%d/%d", e.count(meta.KindDone), e.shardCount())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := testDB.Restart(ctx, 2*time.Second); err != nil {
		t.Fatalf("restart MariaDB: %v", err)
	}
	t.Logf("restarted MariaDB with %s shards done", at)
	if e.barrier() != nil {
		t.Fatal("the job finished before the database came back: restart it earlier")
	}

	// Once more while the verify leader waits inside its phase for a table
	// lock (the restart ends the lock's session too).
	if unlock := e.lockDoneTable(); unlock != nil {
		var leader string
		var phase meta.Phase
		e.waitFor("the verification to wait for the locked table", 90*time.Second, func() bool {
			leader, phase = e.liveLeader(ns.leases(), afterImport)
			return e.waitingForLocks() > 0
		})
		if err := testDB.Restart(ctx, time.Second); err != nil {
			t.Fatalf("restart MariaDB: %v", err)
		}
		unlock()
		t.Logf("restarted MariaDB while the verification read a table (leader: %q of %q)", leader, phase)
	} else {
		t.Log("the import ended before a table was done: no restart during verify")
	}
	e.waitAll(0, 2*time.Minute, ns.all()...)
	e.checkSucceeded()
}

// TestFaultEtcdMemberKilled runs the job on a real 3-member etcd cluster and
// SIGKILLs its raft leader mid-import, then starts it again; twice, so that
// the nodes go through two leader changes (each fails the etcd requests
// they have in flight, and they join again).
func TestFaultEtcdMemberKilled(t *testing.T) {
	c, e := newClusterEnv(t, "3", 150_000)
	ns := e.startNodes(sameConfig(e.config(nil), "n1", "n2", "n3"))
	const kills = 2
	for i := 0; i < kills; i++ {
		before := e.count(meta.KindDone)
		e.waitFor("shards done since the last kill", 60*time.Second, func() bool {
			return e.count(meta.KindDone) >= before+2 || e.barrier() != nil
		})
		if e.barrier() != nil {
			t.Fatalf("the job ended after %d kills: make it longer", i)
		}
		leader := raftLeader(t, e.etcd, c.Endpoints())
		c.Kill(leader)
		c.WaitHealthy(60 * time.Second) // a new leader
		c.Restart(leader)
		c.WaitHealthy(60 * time.Second)
	}
	t.Logf("killed and restarted the raft leader %d times; %d/%d shards done", kills, e.count(meta.KindDone), e.shardCount())
	e.waitAll(0, 2*time.Minute, ns.all()...)
	e.checkSucceeded()
	for _, p := range ns.all() {
		t.Logf("%s joined again %d time(s) after a failed attempt", p.id, strings.Count(p.log(), "attempt failed; rejoining"))
	}
}

// TestFaultEtcdQuorumLost takes two of three etcd members away for longer
// than the three election timeouts after which the last one cancels the
// watches of clients that require a leader, and for less than the nodes'
// leases. Every worker waits for a table lock meanwhile, so no node makes an
// etcd request that fails and makes it join again: each must come through on
// the session and the watches it has.
func TestFaultEtcdQuorumLost(t *testing.T) {
	c, e := newClusterEnv(t, "15", 100_000)
	ns := e.startNodes(sameConfig(e.config(nil), "n1", "n2", "n3"))
	e.waitFor("shards done", 60*time.Second, func() bool { return e.count(meta.KindDone) >= 3 })
	unlock := e.lockTables()
	e.waitFor("every worker to wait for the table lock", 60*time.Second, func() bool {
		c := e.liveClaims(ns.leases())
		return c["n1"] == 2 && c["n2"] == 2 && c["n3"] == 2 && e.waitingForLocks() == 6
	})
	down := []int{0, 1}
	at := fmt.Sprintf("%d/%d", e.count(meta.KindDone), e.shardCount())
	for _, i := range down {
		c.Kill(i)
	}
	lost := time.Now()
	time.Sleep(5 * time.Second) // the outage
	for _, i := range down {
		c.Restart(i)
	}
	c.WaitHealthy(60 * time.Second)
	unlock()
	t.Logf("etcd members %v were down for %s with %s shards done", down, time.Since(lost).Round(100*time.Millisecond), at)
	e.waitAll(0, 2*time.Minute, ns.all()...)
	e.checkSucceeded()
	for _, p := range ns.all() {
		if n := strings.Count(p.log(), "shard view watch ended; re-reading"); n > 0 {
			t.Logf("%s: its shard view's watch ended %d time(s) and re-read", p.id, n)
		}
	}
}

// newClusterEnv is a fault env on a real 3-member etcd cluster, every
// member in the nodes' endpoints, with leases of ttl seconds and a dump of
// rows rows.
func newClusterEnv(t *testing.T, ttl string, rows int) (*etcdcluster.Cluster, *env) {
	t.Helper()
	c := etcdcluster.Start(t, 3)
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	e := newFaultEnvOn(t, gendump.Options{Rows: rows, Format: "csv", FilesPerTable: 2, Header: true}, c.Endpoints(), cli)
	e.extra["etcd.lease-ttl"] = ttl
	return c, e
}

// raftLeader is the index of the member that leads the cluster.
func raftLeader(t *testing.T, cli *clientv3.Client, endpoints []string) int {
	t.Helper()
	for i, ep := range endpoints {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := cli.Status(ctx, ep)
		cancel()
		if err == nil && st.Header.MemberId == st.Leader {
			return i
		}
	}
	t.Fatal("no member says it leads")
	return -1
}

// TestFaultEtcdCompaction compacts etcd under the nodes' watches. n1 and a
// `storm wait` reach etcd through a proxy that is cut for a moment while the
// others write; etcd is compacted to its current revision and the proxy
// heals, so every watch they had open resumes from a compacted revision:
// first while the plan leader is held inside its phase (n1 waits in the
// election and for the plan marker, `storm wait` for the barrier), then
// mid-import (n1's shard view), on a link slowed so that the cut catches
// n1's claims and completions in flight. Each watch must re-read and go
// on, and n1 must send what it lost again rather than join anew.
func TestFaultEtcdCompaction(t *testing.T) {
	srv, cli := etcdserver.StartT(t)
	px, via := proxyTo(t, srv.ClientURL)
	e := newFaultEnvOn(t, gendump.Options{Rows: 150_000, Format: "csv", FilesPerTable: 2, Header: true},
		[]string{srv.ClientURL}, cli)
	// Long enough leases that a cut of a second or two costs no session.
	e.extra["etcd.lease-ttl"] = "8"
	direct := e.config(nil)
	proxied := e.config(map[string]string{"etcd.endpoints": tomlStrings([]string{via})})

	e.createTables()
	unlock := e.lockTables()
	n2 := e.node("n2", direct)
	var plan meta.Phase
	e.waitFor("n2 to lead the plan and wait for the lock", 30*time.Second, func() bool {
		var id string
		id, plan = e.liveLeader(e.leases(), planning)
		return id == "n2" && e.waitingForLocks() > 0
	})
	ns := &nodes{e: e, cfg: map[string]string{"n1": proxied, "n2": direct, "n3": direct}, procs: map[string]*proc{"n2": n2}}
	ns.restart("n1")
	ns.restart("n3")
	wait := e.start("wait", "wait", "--config", proxied)
	e.waitFor("n1 and n3 to campaign for the plan", 30*time.Second, func() bool {
		return e.get(e.job.Election(plan)+"/", clientv3.WithPrefix(), clientv3.WithCountOnly()).Count == 3
	})
	rev := e.cutAndCompact(px, func() {
		for i := 0; i < 5; i++ {
			if _, err := e.etcd.Put(context.Background(), "/storm-test/noise", strconv.Itoa(i)); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Logf("compacted to revision %d while n2 held phase %s", rev, plan)
	unlock()

	// The rest of the import takes about a second here: an open
	// transaction holding the first row of wide keeps the job from ending
	// before n1's shard view has met the second compaction (the shard that
	// loads that row waits for it).
	release := e.holdFirstRow("wide")
	e.waitFor("n1 to hold shards", 60*time.Second, func() bool { return e.liveClaims(ns.leases())["n1"] > 0 })
	before := len(ns.procs["n1"].log())
	// A slow link keeps n1's claims and completions in flight long enough
	// that the cut loses an answer or two: n1 must send them again, not
	// drop its work and join again (which re-reads instead of resuming).
	px.SetDelay(20 * time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	rev = e.cutAndCompact(px, func() {
		r := e.revision()
		e.waitFor("the peers to write", 30*time.Second, func() bool { return e.revision() >= r+10 || e.barrier() != nil })
	})
	t.Logf("compacted to revision %d mid-import (%d/%d shards done)", rev, e.count(meta.KindDone), e.shardCount())
	e.waitFor("n1's shard view to re-read after the compaction", 30*time.Second, func() bool {
		log := ns.procs["n1"].log()[before:]
		// A node that joins again reads a new view, and its watch never
		// meets the compaction: what this test is about did not happen.
		if i := strings.Index(log, "rejoining"); i >= 0 {
			line, _, _ := strings.Cut(log[strings.LastIndex(log[:i], "\n")+1:], "\n")
			t.Fatalf("n1 joined again instead of resuming its watch: %s", line)
		}
		return strings.Contains(log, "watch compacted; re-reading")
	})
	if b := e.barrier(); b != nil {
		t.Fatalf("the job ended while a row of wide was held: %+v", b)
	}
	px.SetDelay(0)
	release()

	e.waitAll(0, 2*time.Minute, ns.all()...)
	e.waitAll(0, 30*time.Second, wait)
	if !strings.Contains(wait.stdout(), "succeeded") {
		t.Errorf("storm wait printed %q", wait.stdout())
	}
	e.checkSucceeded()
	if strings.Contains(ns.procs["n1"].log(), "lost the etcd session") {
		t.Log("n1 lost its session during a cut: its watches were re-created, not resumed")
	}
}

// holdFirstRow inserts the first row of the table's first dump file in a
// transaction it keeps open until release (or the test's end): a shard
// that loads that row waits for the transaction, which rolls back, and
// then loads it. Reads don't wait (the plan's included).
func (e *env) holdFirstRow(table string) (release func()) {
	e.t.Helper()
	files, _ := filepath.Glob(filepath.Join(e.gen.Dir, e.gen.DB+"."+table+".*.csv"))
	if len(files) == 0 {
		e.t.Fatalf("no dump file of %s", table)
	}
	sort.Strings(files)
	data, err := os.ReadFile(files[0])
	if err != nil {
		e.t.Fatal(err)
	}
	lines := strings.SplitN(string(data), "\n", 3)
	id, _, _ := strings.Cut(lines[1], ",") // after the header
	tx, err := e.db().BeginTx(context.Background(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO `"+e.gen.DB+"`.`"+table+"` (id) VALUES (?)", id); err != nil {
		_ = tx.Rollback()
		e.t.Fatalf("hold row %s of %s: %v", id, table, err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = tx.Rollback() }) }
	e.t.Cleanup(release)
	return release
}

// cutAndCompact cuts the proxy, runs meanwhile (which must make etcd's
// revision move), compacts etcd to its current revision and heals.
func (e *env) cutAndCompact(px *faultproxy.Proxy, meanwhile func()) int64 {
	e.t.Helper()
	px.Block()
	defer px.Heal()
	meanwhile()
	return e.compact()
}

// TestFaultCancel cancels the job mid-import with `storm cancel`: every node
// exits 1, the barrier says cancelled, no shard is left claimed, and the
// target holds exactly the rows the checkpoints say were committed.
func TestFaultCancel(t *testing.T) {
	e := newFaultEnv(t, gendump.Options{Rows: 60_000, Format: "csv", FilesPerTable: 2, Header: true})
	cfg := e.config(nil)
	ns := e.startNodes(sameConfig(cfg, "n1", "n2", "n3"))
	wait := e.start("wait", "wait", "--config", cfg)
	e.waitFor("shards in work", 60*time.Second, func() bool {
		c := e.liveClaims(ns.leases())
		return e.count(meta.KindDone) >= 2 && c["n1"]+c["n2"]+c["n3"] > 0
	})
	// Every worker holds a shard and waits for a table lock when the cancel
	// comes; n2 is killed then, its claims left to its lease, and started
	// again.
	unlock := e.lockTables()
	e.waitFor("every worker to wait for the table lock", 60*time.Second, func() bool {
		return e.waitingForLocks() == 6
	})
	at := fmt.Sprintf("%d/%d", e.count(meta.KindDone), e.shardCount())
	cancel := e.start("cancel", "cancel", "--config", cfg, "--reason", "fault test")
	e.waitAll(0, 30*time.Second, cancel)
	held := e.liveClaims(ns.leases())["n2"]
	ns.procs["n2"].kill()
	ns.restart("n2")
	unlock()
	t.Logf("cancelled with %s shards done; killed n2 holding %d shard(s)", at, held)

	e.waitAll(1, time.Minute, ns.all()...)
	e.waitAll(1, 30*time.Second, wait)
	b := e.barrierOnce()
	if b.Status != meta.StatusCancelled || !strings.Contains(b.Reason, "fault test") {
		t.Fatalf("barrier %s: %q, want cancelled with the reason", b.Status, b.Reason)
	}
	if n := e.count(meta.KindClaims); n != 0 {
		t.Errorf("%d shard(s) still claimed after the cancel", n)
	}
	for _, p := range ns.all() {
		if !strings.Contains(p.stdout(), "cancelled") {
			t.Errorf("%s printed %q", p.id, p.stdout())
		}
	}
	e.checkCommittedRows()
}

// checkCommittedRows checks that the target holds exactly the rows the
// job's checkpoints say were committed: no batch landed outside its fence.
func (e *env) checkCommittedRows() {
	e.t.Helper()
	db := e.db()
	var committed sql.NullInt64
	if err := db.QueryRow("SELECT SUM(rows_done) FROM storm_meta.checkpoints WHERE job = ?", e.job.ID).Scan(&committed); err != nil {
		e.t.Fatal(err)
	}
	var total int64
	for _, ti := range gendump.Tables(e.gen) {
		var n int64
		if err := db.QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM `%s`.`%s`", e.gen.DB, ti.Name)).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		total += n
	}
	if total != committed.Int64 {
		e.t.Errorf("target holds %d rows, the checkpoints say %d were committed", total, committed.Int64)
	}
	e.t.Logf("%d rows committed before the job stopped", total)
}
