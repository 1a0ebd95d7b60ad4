package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"storm/internal/s3test"
	"storm/internal/testcerts"
)

// startS3 runs a private S3 server and points this package at it.
func startS3(t *testing.T) (*s3test.Server, context.Context) {
	t.Helper()
	srv := s3test.StartT(t)
	ConfigureS3(S3Config{Endpoint: srv.Endpoint(), Region: s3test.Region, ForcePathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	t.Cleanup(func() { ConfigureS3(S3Config{}) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	if err := srv.CreateBucket(ctx, "dump"); err != nil {
		t.Fatal(err)
	}
	return srv, ctx
}

func TestS3ListAndRead(t *testing.T) {
	srv, ctx := startS3(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160,000 bytes
	for key, body := range map[string][]byte{
		"p/a.t.csv":        data,
		"p/sub/b.t.csv":    []byte("x"),
		"p/sub/deep/c.sql": []byte("y"),
		"other/d.csv":      []byte("z"),
	} {
		if err := srv.Put(ctx, "dump", key, body); err != nil {
			t.Fatal(err)
		}
	}
	rels := func(es []Entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, fmt.Sprintf("%s %d %v", e.Rel, e.Size, e.Regular))
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		root string
		tree bool
		want []string
	}{
		{"s3://dump/p", false, []string{"a.t.csv 160000 true", "sub 0 false"}},
		{"s3://dump/p/", true, []string{"a.t.csv 160000 true", "sub/b.t.csv 1 true", "sub/deep/c.sql 1 true"}},
		{"s3://dump", false, []string{"other 0 false", "p 0 false"}},
	} {
		es, err := List(ctx, tc.root, tc.tree)
		if err != nil {
			t.Fatalf("list %s: %v", tc.root, err)
		}
		if got := rels(es); !slices.Equal(got, tc.want) {
			t.Errorf("list %s tree=%v: got %q, want %q", tc.root, tc.tree, got, tc.want)
		}
	}
	es, _ := List(ctx, "s3://dump/p", false)
	var a Entry
	for _, e := range es {
		if e.Rel == "a.t.csv" {
			a = e
		}
	}
	if a.Path != "s3://dump/p/a.t.csv" || a.ETag == "" {
		t.Fatalf("entry %+v: want path s3://dump/p/a.t.csv and an ETag", a)
	}

	o, err := Open(ctx, a.Path, Version{Size: a.Size, ETag: a.ETag})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	got, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read all: %d bytes, err %v; want %d bytes", len(got), err, len(data))
	}
	if _, err := o.Seek(100001, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(o)
	if err != nil || !bytes.Equal(got, data[100001:]) {
		t.Fatalf("read after seek: %d bytes, err %v", len(got), err)
	}
	p := make([]byte, 33)
	if n, err := o.ReadAt(p, 70000); err != nil || n != 33 || !bytes.Equal(p, data[70000:70033]) {
		t.Fatalf("ReadAt: %d, %v, %q", n, err, p)
	}
	if n, err := o.ReadAt(p, int64(len(data))-10); err != io.EOF || n != 10 || !bytes.Equal(p[:n], data[len(data)-10:]) {
		t.Fatalf("ReadAt at the end: %d, %v", n, err)
	}
}

func TestS3Changed(t *testing.T) {
	srv, ctx := startS3(t)
	if err := srv.Put(ctx, "dump", "p/a.t.csv", []byte("1,2\n3,4\n")); err != nil {
		t.Fatal(err)
	}
	v, err := Stat(ctx, "s3://dump/p/a.t.csv")
	if err != nil || v.Size != 8 || v.ETag == "" {
		t.Fatalf("stat: %+v, %v", v, err)
	}
	// Replaced (same size, other bytes) before the open: refused at open.
	if err := srv.Put(ctx, "dump", "p/a.t.csv", []byte("5,6\n7,8\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, "s3://dump/p/a.t.csv", v); !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "s3://dump/p/a.t.csv") {
		t.Fatalf("open of a replaced object: %v, want ErrChanged naming the key", err)
	}
	// Replaced after the open: the first GET is refused.
	v2, _ := Stat(ctx, "s3://dump/p/a.t.csv")
	o, err := Open(ctx, "s3://dump/p/a.t.csv", v2)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := srv.Put(ctx, "dump", "p/a.t.csv", []byte("9,9\n9,9\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(o); !errors.Is(err, ErrChanged) {
		t.Fatalf("read of an object replaced after open: %v, want ErrChanged", err)
	}
	// Deleted.
	if err := srv.Delete(ctx, "dump", "p/a.t.csv"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, "s3://dump/p/a.t.csv", v2); err == nil || !strings.Contains(err.Error(), "s3://dump/p/a.t.csv") {
		t.Fatalf("open of a deleted object: %v", err)
	}
}

func TestS3Refusals(t *testing.T) {
	srv, ctx := startS3(t)
	if err := srv.Put(ctx, "dump", "p/a.t.csv", []byte("1\n")); err != nil {
		t.Fatal(err)
	}
	if err := Probe(ctx, "s3://dump/p"); err != nil {
		t.Fatalf("probe: %v", err)
	}
	for _, tc := range []struct{ root, want string }{
		{"s3://nobucket/p", `no bucket "nobucket"`},
		{"s3://dump/nothing", `no object under prefix "nothing/"`},
	} {
		if err := Probe(ctx, tc.root); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("probe %s: %v, want %q", tc.root, err, tc.want)
		}
	}
	const wrong = "not-the-secret-0123456789"
	ConfigureS3(S3Config{Endpoint: srv.Endpoint(), ForcePathStyle: true, AccessKey: srv.AccessKey, SecretKey: wrong})
	err := Probe(ctx, "s3://dump/p")
	if err == nil || !strings.Contains(err.Error(), srv.Endpoint()) || !strings.Contains(err.Error(), "source.s3.secret-access-key") ||
		strings.Contains(err.Error(), wrong) {
		t.Fatalf("probe with a wrong secret: %v; want the endpoint and the setting named, not the secret", err)
	}
}

// TestS3ReadAcrossRestart stops the server in the middle of a stream and
// starts it again: the read goes on from the offset it reached.
func TestS3ReadAcrossRestart(t *testing.T) {
	srv, ctx := startS3(t)
	data := make([]byte, 32<<20) // more than the sockets buffer, so the stop cuts the stream
	for i := range data {
		data[i] = byte(i*7 + i>>13)
	}
	if err := srv.Put(ctx, "dump", "big.csv", data); err != nil {
		t.Fatal(err)
	}
	o, err := Open(ctx, "s3://dump/big.csv", Version{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	o.(*s3Object).HintEnd(int64(len(data))) // one GET for it all, cut by the stop
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(o, head); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	go func() {
		time.Sleep(time.Second)
		if err := srv.Restart(ctx); err != nil {
			t.Error(err)
		}
	}()
	rest, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("read across a restart: %v", err)
	}
	if g := o.(*s3Object).gets; g < 2 {
		t.Fatalf("%d GET(s): the restart did not cut the stream", g)
	}
	if !bytes.Equal(append(head, rest...), data) {
		t.Fatalf("read across a restart: %d bytes, not the object's %d", len(head)+len(rest), len(data))
	}
}

// pattern is an endless reader of bytes that depend on their offset.
type pattern struct{ off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.off*31 + p.off>>11)
		p.off++
	}
	return len(b), nil
}

// TestS3StreamMemory reads a 256 MiB object as one stream, as a worker
// reads its shard: the heap stays small whatever the object's size, and
// every byte arrives once, in order.
func TestS3StreamMemory(t *testing.T) {
	srv, ctx := startS3(t)
	const size = 256 << 20
	if err := srv.PutReader(ctx, "dump", "huge.csv", io.LimitReader(&pattern{}, size), size); err != nil {
		t.Fatal(err)
	}
	want := sha256.New()
	io.Copy(want, io.LimitReader(&pattern{}, size))

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	o, err := Open(ctx, "s3://dump/huge.csv", Version{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	got := sha256.New()
	buf := make([]byte, 256<<10)
	var n, peak int64
	for i := 0; ; i++ {
		k, err := o.Read(buf)
		got.Write(buf[:k])
		n += int64(k)
		if i%256 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, int64(ms.HeapInuse)-int64(base))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("read %d bytes (sha256 match %v), want %d", n, bytes.Equal(got.Sum(nil), want.Sum(nil)), size)
	}
	t.Logf("heap in use grew by at most %.1f MiB while streaming %d MiB", float64(peak)/(1<<20), size>>20)
	if peak > 32<<20 {
		t.Errorf("heap in use grew by %d MiB while streaming a %d MiB object: the read is not a bounded stream", peak>>20, size>>20)
	}
}

// An https endpoint whose certificate a private CA signed: trusted with
// source.s3.ca, refused without it.
func TestS3PrivateCA(t *testing.T) {
	certs := testcerts.New(t)
	srv := s3test.StartT(t, s3test.Options{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, CAFile: certs.CA})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.CreateBucket(ctx, "dump"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Put(ctx, "dump", "p/a.t.csv", []byte("1\n")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ConfigureS3(S3Config{}) })
	conf := S3Config{Endpoint: srv.Endpoint(), ForcePathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CAFile: certs.CA}
	ConfigureS3(conf)
	if err := Probe(ctx, "s3://dump/p"); err != nil {
		t.Fatalf("with source.s3.ca: %v", err)
	}
	conf.CAFile = ""
	ConfigureS3(conf)
	if err := Probe(ctx, "s3://dump/p"); err == nil || !strings.Contains(err.Error(), "set source.s3.ca") {
		t.Fatalf("without the CA: %v, want a certificate error naming source.s3.ca", err)
	}
}

// A stream told where it will likely stop (HintEnd) asks for the range up
// to there in one GET, and reads on past it correctly when asked to.
func TestS3HintedRead(t *testing.T) {
	srv, ctx := startS3(t)
	const size = 12 << 20
	data, _ := io.ReadAll(io.LimitReader(&pattern{}, size))
	if err := srv.Put(ctx, "dump", "o.csv", data); err != nil {
		t.Fatal(err)
	}
	o, err := Open(ctx, "s3://dump/o.csv", Version{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for _, r := range []struct{ from, hint, to int64 }{
		{3 << 20, 5 << 20, 10 << 20}, // past the hint and its slack, into doubling windows
		{0, 100, 300 << 10},          // a hint below one window
		{11 << 20, 12 << 20, size},   // to the end
	} {
		if _, err := o.Seek(r.from, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		o.(*s3Object).HintEnd(r.hint)
		got := make([]byte, r.to-r.from)
		if _, err := io.ReadFull(o, got); err != nil || !bytes.Equal(got, data[r.from:r.to]) {
			t.Fatalf("read %d-%d hinted %d: %v, bytes equal %v", r.from, r.to, r.hint, err, bytes.Equal(got, data[r.from:r.to]))
		}
	}
	if n, err := o.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d, %v", n, err)
	}
}

// hangFor puts an object bigger than the sockets' buffers and returns it
// opened, its bytes, and hang, which stops the server (SIGSTOP) for several
// stall periods of a shortened readStall and returns a wait for its
// resumption.
func hangFor(t *testing.T, name string) (Object, []byte, func() func()) {
	t.Helper()
	srv, ctx := startS3(t)
	old := readStall
	t.Cleanup(func() { readStall = old })
	readStall = 500 * time.Millisecond
	const size = 32 << 20
	data, _ := io.ReadAll(io.LimitReader(&pattern{}, size))
	if err := srv.Put(ctx, "dump", name, data); err != nil {
		t.Fatal(err)
	}
	o, err := Open(ctx, "s3://dump/"+name, Version{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	hang := func() func() {
		if err := srv.Pause(); err != nil {
			t.Fatal(err)
		}
		resumed := make(chan error, 1)
		go func() {
			time.Sleep(2 * time.Second) // several stall periods
			resumed <- srv.Resume()
		}()
		return func() {
			if err := <-resumed; err != nil {
				t.Fatal(err)
			}
		}
	}
	return o, data, hang
}

// A server that stops sending in the middle of a body (it hangs) has the
// read given up after readStall and retried from the offset reached.
func TestS3ReadStall(t *testing.T) {
	o, data, hang := hangFor(t, "o.csv")
	o.(*s3Object).HintEnd(int64(len(data))) // one GET for it all, cut by the pause
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(o, head); err != nil {
		t.Fatal(err)
	}
	resumed := hang()
	rest, err := io.ReadAll(o)
	resumed()
	if err != nil || !bytes.Equal(append(head, rest...), data) {
		t.Fatalf("read across a hang: %d bytes, %v", len(head)+len(rest), err)
	}
	if g := o.(*s3Object).gets; g < 2 {
		t.Fatalf("%d GET(s): the hang was not met by a new GET", g)
	}
}

// Without source.s3.access-key, credentials come from the AWS chain: the
// environment, then the shared credentials file; with none, the error says
// which settings to set.
func TestS3CredentialChain(t *testing.T) {
	srv, ctx := startS3(t)
	if err := srv.Put(ctx, "dump", "p/a.t.csv", []byte("1\n")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	chain := S3Config{Endpoint: srv.Endpoint(), Region: s3test.Region, ForcePathStyle: true}

	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	ConfigureS3(chain)
	if err := Probe(ctx, "s3://dump/p"); err != nil {
		t.Fatalf("keys from the environment: %v", err)
	}

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	creds := fmt.Sprintf("[storm]\naws_access_key_id = %s\naws_secret_access_key = %s\n", srv.AccessKey, srv.SecretKey)
	if err := os.WriteFile(filepath.Join(dir, "credentials"), []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_PROFILE", "storm")
	ConfigureS3(chain)
	if err := Probe(ctx, "s3://dump/p"); err != nil {
		t.Fatalf("keys from the shared credentials file: %v", err)
	}

	t.Setenv("AWS_PROFILE", "")
	os.Remove(filepath.Join(dir, "credentials"))
	ConfigureS3(chain)
	err := Probe(ctx, "s3://dump/p")
	if err == nil || !strings.Contains(err.Error(), "no credentials") || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("no credentials anywhere: %v", err)
	}
}

// ReadAt (Parquet's reads) meets a server that hangs mid-body as Read
// does: the GET is ended after readStall and asked again from the offset
// reached, and the bytes come out whole.
func TestS3ReadAtStall(t *testing.T) {
	o, data, hang := hangFor(t, "o.parquet")
	resumed := hang()
	buf := make([]byte, len(data)-1000)
	n, err := o.ReadAt(buf, 1000)
	resumed()
	if err != nil || n != len(buf) || !bytes.Equal(buf, data[1000:]) {
		t.Fatalf("ReadAt across a hang: %d bytes, %v", n, err)
	}
	if g := o.(*s3Object).readAtGets.Load(); g < 2 {
		t.Fatalf("%d GET(s): the hang was not met by a new GET", g)
	}
}
