package node

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"storm/import/checksum"
	"storm/import/storage"
	"storm/internal/etcdserver"
	"storm/internal/parquetgen"
	"storm/internal/s3test"
	"storm/meta"
)

// TestPlanReadsOnce plans a dump in a real S3 server, with the auto shard
// size (which needs the listing before the source's plan does), through a
// proxy that counts requests: the bucket is listed once, and each Parquet
// object is opened once (a HEAD) and its footer read once (two GETs: the
// magic bytes and the tail), by the split; the check of its columns
// against the table reads nothing more. (Before: the bucket listed twice,
// each Parquet object opened twice, 2 HEADs and 4 GETs, and each schema
// file read twice.)
func TestPlanReadsOnce(t *testing.T) {
	srv := s3test.StartT(t)
	cnt := srv.Count(t)
	storage.ConfigureS3(storage.S3Config{Endpoint: cnt.Endpoint(), Region: s3test.Region, ForcePathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	t.Cleanup(func() { storage.ConfigureS3(storage.S3Config{}) })
	_, cli := etcdserver.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := srv.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	const dbName = "plan_reads_once"
	db, err := sql.Open("mysql", testDB.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP DATABASE IF EXISTS " + dbName) })

	files := map[string][]byte{
		dbName + ".t-schema.sql":    []byte(parquetgen.CreateTable("t") + ";\n"),
		dbName + ".c-schema.sql":    []byte("CREATE TABLE `c` (id int, v text);\n"),
		dbName + ".c.00000.csv":     []byte("id,v\n1,a\n2,b\n"),
		dbName + ".t.00000.parquet": nil,
		dbName + ".t.00001.parquet": nil,
	}
	for i, name := range []string{dbName + ".t.00000.parquet", dbName + ".t.00001.parquet"} {
		p := filepath.Join(t.TempDir(), name)
		if err := parquetgen.Write(p, parquetgen.Options{FirstID: int64(1 + i*300), Rows: 300, RowGroup: 100, Compression: "zstd", Seed: 2}); err != nil {
			t.Fatal(err)
		}
		if files[name], err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range files {
		if err := srv.Put(ctx, "bkt", "dump/"+name, data); err != nil {
			t.Fatal(err)
		}
	}

	cfg := testConfig(t, "", "s3://bkt/dump", "plan-reads-once")
	cfg.NodeID = "n1"
	cfg.Spec.Import.ShardSize = meta.ShardSizeAuto
	job, err := meta.NewJob(cfg.Prefix, cfg.Spec.Job)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, job.Node("n1"), meta.Encode(meta.NodeInfo{ID: "n1", Workers: cfg.Workers})); err != nil {
		t.Fatal(err)
	}
	n := &Node{cfg: cfg, spec: cfg.Spec, job: job, cli: cli, dcols: map[string][]checksum.Column{},
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if n.target, err = openTarget(ctx, cfg, cfg.Spec, 0); err != nil {
		t.Fatal(err)
	}
	defer n.target.Close()
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	cnt.Reset()
	planned, err := n.planSources(ctx, sess)
	if err != nil || !planned {
		t.Fatalf("planned %v, %v", planned, err)
	}
	resp, err := cli.Get(ctx, job.Dir(meta.KindShards), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 3 {
		t.Fatalf("%d shards (%v), want 3: one a file", resp.Count, err)
	}
	lists, heads, gets := cnt.N(s3test.ReqList), cnt.Paths(s3test.ReqHead), cnt.Paths(s3test.ReqGet)
	t.Logf("plan: %d LIST, HEADs %v, GETs %v", lists, heads, gets)
	if lists != 1 {
		t.Errorf("the bucket listed %d times, want once", lists)
	}
	for _, name := range []string{dbName + ".t.00000.parquet", dbName + ".t.00001.parquet"} {
		key := "/bkt/dump/" + name
		if heads[key] != 1 || gets[key] != 2 {
			t.Errorf("%s: %d HEADs and %d GETs, want 1 and 2: its footer read once", name, heads[key], gets[key])
		}
	}
	// Each table's schema file is read once too, though the plan both
	// parses it (its indexes) and runs it (CREATE TABLE).
	for _, name := range []string{dbName + ".t-schema.sql", dbName + ".c-schema.sql"} {
		key := "/bkt/dump/" + name
		if heads[key] != 1 || gets[key] != 1 {
			t.Errorf("%s: %d HEADs and %d GETs, want 1 and 1", name, heads[key], gets[key])
		}
	}
}
