package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/internal/faultproxy"
	"storm/internal/gendump"
	"storm/internal/s3test"
	"storm/meta"
)

// The tests of dumps in object storage: real storm processes reading a
// bucket of a real S3 server (versitygw, internal/s3test).

const s3Bucket = "dumps"

// useS3 starts an S3 server, uploads dir under s3://dumps/<prefix>/, and
// points the nodes' config at it: source.dir is the bucket's URL and
// [source.s3] has the endpoint and the keys, the secret in a file.
func (e *env) useS3(dir, prefix string) *s3test.Server {
	e.t.Helper()
	srv := s3test.StartT(e.t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := srv.CreateBucket(ctx, s3Bucket); err != nil {
		e.t.Fatal(err)
	}
	if err := srv.PutDir(ctx, s3Bucket, prefix, dir); err != nil {
		e.t.Fatal(err)
	}
	secretFile := filepath.Join(e.dir, "s3.secret")
	if err := os.WriteFile(secretFile, []byte(srv.SecretKey+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.extra["source.dir"] = q("s3://" + s3Bucket + "/" + prefix)
	e.extra["source.s3.endpoint"] = q(srv.Endpoint())
	e.extra["source.s3.region"] = q(s3test.Region)
	e.extra["source.s3.force-path-style"] = "true"
	e.extra["source.s3.access-key"] = q(srv.AccessKey)
	e.extra["source.s3.secret-access-key-file"] = q(secretFile)
	return srv
}

// waitSucceeded waits for the nodes to exit 0, then checks the job as
// checkSucceeded does (every shard, every row) and that each table's rows
// and digest matched.
func (e *env) waitSucceeded(nodes []*proc, timeout time.Duration) meta.Barrier {
	e.t.Helper()
	for _, p := range nodes {
		if code := p.wait(e.t, timeout); code != 0 {
			e.t.Fatalf("%s exited %d:\n%s", p.id, code, tail(p.log(), 20))
		}
	}
	b := e.checkSucceeded()
	for _, r := range b.Tables {
		// A table without rows is counted, not hashed (TestE2ERoutes' lonely).
		if r.Actual != r.Expected || (r.Mode != meta.VerifyDigest && r.Expected > 0) {
			e.t.Errorf("table result %+v", r)
		}
	}
	return b
}

// shards lists the job's shards.
func (e *env) shards() []meta.Shard {
	e.t.Helper()
	resp, err := e.etcd.Get(e.t.Context(), e.job.Dir(meta.KindShards), clientv3.WithPrefix())
	if err != nil {
		e.t.Fatal(err)
	}
	var out []meta.Shard
	for _, kv := range resp.Kvs {
		var s meta.Shard
		if err := meta.Decode(string(kv.Key), kv.Value, &s); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// Three nodes import a dump from a bucket (CSV split into byte ranges read
// with ranged GETs, and SQL); one is SIGKILLed while it holds shards, and
// its peers take them over from their checkpoints. Rows and digests are
// exact, and the S3 secret is nowhere a user or operator can see.
func TestE2ES3ThreeNodesOneKilled(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 120_000, Format: "mixed", FilesPerTable: 2, Header: true})
	srv := e.useS3(e.gen.Dir, "exports/day1")
	cfg := e.config(nil)
	n1, n2, n3 := e.node("n1", cfg), e.node("n2", cfg), e.node("n3", cfg)

	e.waitFor("n2 to hold a shard after some shards are done", 90*time.Second, func() bool {
		return e.count(meta.KindDone) >= 2 && len(e.claimsOf("n2")) > 0
	})
	held := e.claimsOf("n2")
	n2.kill()
	t.Logf("killed n2 while it held %v", held)
	b := e.waitSucceeded([]*proc{n1, n3}, 3*time.Minute)
	t.Logf("%d shard(s) resumed from a checkpoint's offset", strings.Count(n1.log()+n3.log(), "resuming shard from checkpoint"))

	split := 0
	for _, s := range e.shards() {
		if !strings.HasPrefix(s.Chunk.Path, "s3://"+s3Bucket+"/exports/day1/") || s.Chunk.ETag == "" || s.Chunk.Size == 0 {
			t.Errorf("shard %s: chunk %+v: want an s3:// key with its ETag and size", s.ID, s.Chunk)
		}
		if s.Chunk.Start > 0 {
			split++
		}
	}
	if split == 0 {
		t.Errorf("no CSV object was split into byte ranges (%d shards)", b.Shards)
	}
	for what, text := range map[string]string{
		"n1's log": n1.log(), "n2's log": n2.log(), "n3's log": n3.log(),
		"the nodes' output": n1.stdout() + n3.stdout(), "every etcd key and value": allKeys(t, e.etcd),
	} {
		if strings.Contains(text, srv.SecretKey) {
			t.Errorf("the S3 secret is in %s", what)
		}
	}
	for _, args := range [][]string{{"status", "--json"}, {"job", "show", "--json"}} {
		code, out := e.run(strings.Join(args, "-"), append(args, "--config", cfg)...)
		if code != 0 || strings.Contains(out, srv.SecretKey) || strings.Contains(out, srv.AccessKey) {
			t.Errorf("storm %s (exit %d) shows the S3 keys or failed:\n%s", strings.Join(args, " "), code, tail(out, 10))
		}
	}
}

// One job, two sources: a bucket every node reads and a directory on one
// node's disk.
func TestE2ES3AndLocalSource(t *testing.T) {
	e := newEnv(t, gendump.Options{Header: true})
	hosts := []string{"host-a", "host-b"}
	gens := shardedDumps(e, hosts, 6_000)
	srv := e.useS3(gens[0].Dir, "shard1")
	delete(e.extra, "source.dir")
	path := e.config(map[string]string{"source.dir": `""`})
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text = append(text, fmt.Sprintf("[[source.dirs]]\nid = \"bucket\"\ndir = %q\n\n[[source.dirs]]\nid = \"local\"\ndir = %q\nnode = %q\n",
		"s3://"+s3Bucket+"/shard1", gens[1].Dir, hosts[1])...)
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	nodes := []*proc{e.node(hosts[0], path), e.node(hosts[1], path)}
	for _, p := range nodes {
		if code := p.wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("%s exited %d:\n%s", p.id, code, tail(p.log(), 20))
		}
	}
	b := e.barrier()
	if b == nil || b.Status != meta.StatusSucceeded || b.Rows != 12_000 {
		t.Fatalf("barrier %+v", b)
	}
	bucket, local := 0, 0
	for _, s := range e.shards() {
		switch {
		case s.Source == "bucket" && strings.HasPrefix(s.Chunk.Path, "s3://"):
			bucket++
		case s.Source == "local" && strings.HasPrefix(s.Chunk.Path, gens[1].Dir):
			local++
		default:
			t.Errorf("shard %s of source %s reads %s", s.ID, s.Source, s.Chunk.Path)
		}
	}
	if bucket == 0 || local == 0 {
		t.Errorf("%d shards from the bucket, %d from the local directory", bucket, local)
	}
	e.checkUnion(gens)
	_ = srv
}

// [[source.files]] routing rules on a bucket, matched on the key relative
// to the prefix: the export layout of TestE2ERoutes (data parts plain, gzip
// and zstd, schemas apart, decoys), uploaded to S3.
func TestE2ES3RoutesCompressed(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 20_000, Format: "mixed", FilesPerTable: 3, Header: true})
	src := e.gen.DB
	dump, parts := e.exportDump()
	e.useS3(dump, "export-tool")
	e.gen.DB = src + "_copy"
	cfg := e.withRules(e.config(nil), exportRules(e.gen.DB))
	b := e.waitSucceeded([]*proc{e.node("n1", cfg), e.node("n2", cfg)}, 2*time.Minute)
	// Four tables with data and exportDump's lonely one, which has none.
	if b.Rows != 20_000 || len(b.Tables) != 5 || strings.Join(b.NoData, " ") != e.gen.DB+".lonely" {
		t.Errorf("barrier: %d rows, %d tables, %q without data", b.Rows, len(b.Tables), b.NoData)
	}
	comp := map[string]int{}
	for _, s := range e.shards() {
		comp[string(s.Chunk.Compression)]++
	}
	if comp["gzip"] == 0 || comp["zstd"] == 0 || b.Shards <= parts {
		t.Errorf("shards by compression %v, %d shards for %d parts: want gzip, zstd and split plain parts", comp, b.Shards, parts)
	}
}

// The S3 server is stopped in the middle of the import and started again
// seconds later: reads cut off are retried from the offset they reached,
// and the job finishes with every row.
func TestE2ES3ServerRestart(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 120_000, Format: "csv", FilesPerTable: 2, Header: true})
	srv := e.useS3(e.gen.Dir, "d")
	cfg := e.config(nil)
	nodes := []*proc{e.node("n1", cfg), e.node("n2", cfg)}
	e.waitFor("some shards done", 90*time.Second, func() bool { return e.count(meta.KindDone) >= 2 })
	if e.barrier() != nil {
		t.Fatal("the job ended before the S3 server could be stopped")
	}
	srv.Stop()
	t.Logf("stopped the S3 server with %d of %d shards done", e.count(meta.KindDone), e.count(meta.KindShards))
	time.Sleep(3 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	e.waitSucceeded(nodes, 3*time.Minute)
	if e.count(meta.KindFailed) != 0 {
		t.Errorf("%d failed shards", e.count(meta.KindFailed))
	}
}

// Every connection to the S3 server is cut again and again while two nodes
// import (a proxy between them resets them mid-body): each read goes on
// from the offset it reached, and the job ends exact with no shard failed.
func TestE2ES3ConnectionsCut(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 120_000, Format: "mixed", FilesPerTable: 2, Header: true})
	srv := e.useS3(e.gen.Dir, "d")
	proxy, err := faultproxy.Start(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.SetDelay(time.Millisecond) // a slow link: reads are in flight when the cuts come
	e.extra["source.s3.endpoint"] = q("http://" + proxy.Addr())
	cfg := e.config(nil)
	nodes := []*proc{e.node("n1", cfg), e.node("n2", cfg)}
	e.waitFor("the import to start", 90*time.Second, func() bool { return e.count(meta.KindShards) > 0 })
	cuts := 0
	for e.barrier() == nil && cuts < 100 {
		time.Sleep(150 * time.Millisecond)
		proxy.Block()
		time.Sleep(50 * time.Millisecond)
		proxy.Heal()
		cuts++
	}
	e.waitSucceeded(nodes, 3*time.Minute)
	logs := nodes[0].log() + nodes[1].log()
	resumed := strings.Count(logs, "S3 read cut; going on from the offset reached")
	t.Logf("cut every connection %d times; %d reads cut mid-body went on from their offset, %d GETs retried",
		cuts, resumed, strings.Count(logs, "S3 GET failed; retrying"))
	if resumed == 0 {
		t.Errorf("no read was cut mid-body in %d cuts", cuts)
	}
	if n := e.count(meta.KindFailed); n != 0 {
		t.Errorf("%d failed shards", n)
	}
}

// A node whose S3 settings are wrong stops at start with exit 2, naming the
// endpoint and what to fix, and never prints the secret.
func TestE2ES3BadSettings(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 500, Format: "csv", Header: true, Tables: []string{"customers"}})
	srv := e.useS3(e.gen.Dir, "d")
	const wrong = "wrong-secret-5f3a9c0e1d"
	wrongFile := filepath.Join(e.dir, "wrong.secret")
	if err := os.WriteFile(wrongFile, []byte(wrong), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		overrides map[string]string
		want      []string
	}{
		{"wrong secret", map[string]string{"source.s3.secret-access-key-file": q(wrongFile)},
			[]string{srv.Endpoint(), "source.s3.secret-access-key", "SignatureDoesNotMatch"}},
		{"unknown access key", map[string]string{"source.s3.access-key": `"AKNOBODY"`},
			[]string{srv.Endpoint(), "source.s3.access-key"}},
		{"missing bucket", map[string]string{"source.dir": `"s3://nosuchbucket/d"`},
			[]string{srv.Endpoint(), `no bucket "nosuchbucket"`}},
		{"missing prefix", map[string]string{"source.dir": q("s3://" + s3Bucket + "/nosuchprefix")},
			[]string{srv.Endpoint(), `no object under prefix "nosuchprefix/"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := e.node("n1", e.config(c.overrides))
			if code := p.wait(t, time.Minute); code != 2 {
				t.Fatalf("exit %d, want 2:\n%s", code, tail(p.log(), 10))
			}
			out := p.log() + p.stdout()
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("%q not named in:\n%s", w, tail(out, 5))
				}
			}
			if strings.Contains(out, wrong) || strings.Contains(out, srv.SecretKey) {
				t.Errorf("a secret is printed:\n%s", out)
			}
		})
	}
	// plan --dry-run says what to fix.
	code, out := e.run("plan", "plan", "--dry-run", "--config", e.config(map[string]string{"source.dir": `"s3://nosuchbucket/d"`}))
	if code != 1 || !strings.Contains(out, "FAIL source main (s3://nosuchbucket/d)") || !strings.Contains(out, "source.s3") {
		t.Errorf("plan --dry-run on a missing bucket: exit %d:\n%s", code, out)
	}
	code, out = e.run("plan-ok", "plan", "--dry-run", "--config", e.config(nil))
	if code != 0 || !strings.Contains(out, "ok   source main (s3://"+s3Bucket+"/d): 1 table(s)") || !strings.Contains(out, "1 shard(s)") {
		t.Errorf("plan --dry-run: exit %d:\n%s", code, out)
	}
}

// An object replaced (same size, other bytes) or deleted between the plan
// and its import fails its shard naming its key: the job fails rather than
// load rows of another version of the dump.
func TestE2ES3ObjectsChanged(t *testing.T) {
	for _, c := range []struct {
		name, want string
		change     func(ctx context.Context, srv *s3test.Server, key, local string) error
	}{
		{"replaced", "changed since the plan: ETag", func(ctx context.Context, srv *s3test.Server, key, local string) error {
			data, err := os.ReadFile(local)
			if err != nil {
				return err
			}
			i := bytes.LastIndexAny(data, "0123456789")
			data[i] = '0' + (data[i]-'0'+1)%10
			return srv.Put(ctx, s3Bucket, key, data)
		}},
		{"deleted", "changed since the plan: the object is gone", func(ctx context.Context, srv *s3test.Server, key, _ string) error {
			return srv.Delete(ctx, s3Bucket, key)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, gendump.Options{Rows: 6_000, Format: "csv", FilesPerTable: 2, Header: true})
			srv := e.useS3(e.gen.Dir, "d")
			n1 := e.node("n1", e.config(map[string]string{"node.workers": "1"}))
			// Hold a shard on a lease of the test's, so the node cannot
			// read its object before the test changes it.
			lease, err := e.etcd.Grant(t.Context(), 120)
			if err != nil {
				t.Fatal(err)
			}
			var held meta.Shard
			e.waitFor("a whole-object shard held by the test", 60*time.Second, func() bool {
				ss := e.shards()
				sort.Slice(ss, func(i, j int) bool { return ss[i].ID > ss[j].ID })
				for _, s := range ss {
					if s.Chunk.Start != 0 || s.Chunk.End != -1 {
						continue
					}
					if _, ok, err := meta.ClaimShard(t.Context(), e.etcd, e.job, s.ID, "test-holder", lease.ID); err == nil && ok {
						held = s
						return true
					}
				}
				return false
			})
			url := held.Chunk.Path
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.change(ctx, srv, strings.TrimPrefix(url, "s3://"+s3Bucket+"/"), filepath.Join(e.gen.Dir, filepath.Base(url))); err != nil {
				t.Fatal(err)
			}
			if _, err := e.etcd.Revoke(t.Context(), lease.ID); err != nil {
				t.Fatal(err)
			}
			if code := n1.wait(t, 2*time.Minute); code != 1 {
				t.Fatalf("n1 exited %d, want 1 (a failed job):\n%s", code, tail(n1.log(), 20))
			}
			b := e.barrier()
			if b == nil || b.Status != meta.StatusFailed {
				t.Fatalf("barrier %+v", b)
			}
			resp, err := e.etcd.Get(t.Context(), e.job.Failed(held.ID))
			if err != nil || len(resp.Kvs) != 1 {
				t.Fatalf("no failed record for shard %s of %s (%v); barrier: %s", held.ID, url, err, b.Reason)
			}
			var f meta.Failed
			if err := meta.Decode(string(resp.Kvs[0].Key), resp.Kvs[0].Value, &f); err != nil {
				t.Fatal(err)
			}
			if f.File != url || !strings.Contains(f.Reason, url) || !strings.Contains(f.Reason, c.want) {
				t.Errorf("failed record %+v: want %q naming %s", f, c.want, url)
			}
		})
	}
}

// A gzip object cut short fails the job naming its key.
func TestE2ES3TruncatedGzip(t *testing.T) {
	e := newEnv(t, gendump.Options{Rows: 3_000, Format: "csv", Header: true, Tables: []string{"customers"}})
	files, _ := filepath.Glob(filepath.Join(e.gen.Dir, "*.customers.*.csv"))
	if len(files) != 1 {
		t.Fatalf("customers files %v", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(files[0])
	gz := files[0] + ".gz"
	writeCompressed(t, gz, data)
	zb, _ := os.ReadFile(gz)
	writeFile(t, gz, zb[:len(zb)/2])
	e.useS3(e.gen.Dir, "d")
	key := "s3://" + s3Bucket + "/d/" + filepath.Base(gz)
	p := e.node("n1", e.config(nil))
	if code := p.wait(t, time.Minute); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, tail(p.log(), 10))
	}
	b := e.barrier()
	if b == nil || b.Status != meta.StatusFailed || !strings.Contains(b.Reason, key) || !strings.Contains(b.Reason, "truncated or corrupt gzip") {
		t.Fatalf("barrier %+v: want a failure naming %s", b, key)
	}
}
