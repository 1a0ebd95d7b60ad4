// Package s3test runs a private S3 server for tests: versitygw, an S3
// gateway that serves a local directory as buckets, built from the module in
// internal/versitygw (`make versitygw`), on a free loopback port with its own
// access keys and its data in a temp dir. It is a real S3 server speaking
// HTTP and SigV4; nothing about S3 is faked.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"storm/internal/childproc"
)

// BinaryEnv names the environment variable that may hold the path of the
// versitygw binary; `make versitygw` builds it into bin/.
const BinaryEnv = "STORM_VERSITYGW"

// Region is the server's region.
const Region = "us-east-1"

// Server is a running private S3 server.
type Server struct {
	Port      int
	AccessKey string
	SecretKey string
	Dir       string // the gateway's root: one subdirectory per bucket

	opts Options
	hc   *http.Client // trusts the server's CA when it serves TLS
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
	api  *s3.Client
}

// Options tune the server.
type Options struct {
	// CertFile and KeyFile make it serve HTTPS with that certificate;
	// CAFile is the CA that signed it, for the harness's own client.
	CertFile, KeyFile, CAFile string
}

// Binary finds versitygw: $STORM_VERSITYGW, or bin/versitygw above the
// working directory.
func Binary() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("versitygw from $%s: %w", BinaryEnv, err)
		}
		return p, nil
	}
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return "", fmt.Errorf("versitygw not found: run `make versitygw` (it builds internal/versitygw into bin/) or set $%s", BinaryEnv)
}

func randomKey(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start runs a server with its buckets under dir.
func Start(ctx context.Context, dir string, opts Options) (*Server, error) {
	s := &Server{Dir: filepath.Join(dir, "root"), AccessKey: "AK" + strings.ToUpper(randomKey(8)), SecretKey: randomKey(20),
		opts: opts, hc: &http.Client{}}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		s.hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, err
	}
	var err error
	if s.Port, err = childproc.FreePort(); err != nil {
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	s.api = s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint()), Region: Region, UsePathStyle: true, HTTPClient: s.hc,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return s, nil
}

// start runs the process on s.Port and waits until it answers.
func (s *Server) start(ctx context.Context) error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	if s.log, err = os.OpenFile(filepath.Join(filepath.Dir(s.Dir), "versitygw.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return err
	}
	// The metadata (ETags) goes to a sidecar directory rather than
	// extended attributes, which not every test machine's /tmp has.
	side := filepath.Join(filepath.Dir(s.Dir), "meta")
	if err := os.MkdirAll(side, 0o755); err != nil {
		return err
	}
	args := []string{"--port", s.Addr(), "--region", Region, "--quiet"}
	if s.opts.CertFile != "" {
		args = append(args, "--cert", s.opts.CertFile, "--key", s.opts.KeyFile)
	}
	s.cmd = exec.Command(bin, append(args, "posix", "--sidecar", side, s.Dir)...)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s.done = make(chan struct{})
	if err := childproc.Start(s.cmd); err != nil {
		s.log.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	done := s.done
	go func() {
		_ = s.cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("versitygw on port %d exited at start: %s", s.Port, s.tail())
		default:
		}
		if s.answers(ctx) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.Stop()
			return fmt.Errorf("versitygw on port %d not ready: %s", s.Port, s.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// answers reports whether the server answers HTTP: any answer (403 to an
// unsigned request) means it serves.
func (s *Server) answers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint()+"/", nil)
	if err != nil {
		return false
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// StartT is Start for one test: the server stops when the test ends.
func StartT(t testing.TB, opts ...Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	s, err := Start(ctx, filepath.Join(t.TempDir(), "s3"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) tail() string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(s.Dir), "versitygw.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Endpoint is the server's URL, for source.s3.endpoint.
func (s *Server) Endpoint() string {
	if s.opts.CertFile != "" {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

// Stop kills the server and waits for it; its buckets stay on disk, so
// Restart serves them again.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
	s.log.Close()
}

// Pause freezes the server (SIGSTOP): connections stay open and nothing
// is answered, as from a server that hangs. Resume undoes it.
func (s *Server) Pause() error { return syscall.Kill(-s.cmd.Process.Pid, syscall.SIGSTOP) }

// Resume lets a paused server go on.
func (s *Server) Resume() error { return syscall.Kill(-s.cmd.Process.Pid, syscall.SIGCONT) }

// Restart starts a stopped server again on the same port and data.
func (s *Server) Restart(ctx context.Context) error { return s.start(ctx) }

// CreateBucket makes a bucket.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	_, err := s.api.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

// Put writes an object.
func (s *Server) Put(ctx context.Context, bucket, key string, data []byte) error {
	_, err := s.api.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// PutReader writes an object of size bytes read from r, streaming it.
func (s *Server) PutReader(ctx context.Context, bucket, key string, r io.Reader, size int64) error {
	// r cannot be rewound to hash it: send it as an unsigned payload.
	_, err := s.api.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: r, ContentLength: aws.Int64(size)},
		s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// PutFile uploads a local file as an object, streaming it.
func (s *Server) PutFile(ctx context.Context, bucket, key, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = s.api.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: f, ContentLength: aws.Int64(st.Size())})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s from %s: %w", bucket, key, path, err)
	}
	return nil
}

// PutDir uploads every file under dir as bucket/prefix/<path relative to dir>.
func (s *Server) PutDir(ctx context.Context, bucket, prefix, dir string) error {
	return filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if prefix != "" {
			key = strings.TrimSuffix(prefix, "/") + "/" + key
		}
		return s.PutFile(ctx, bucket, key, path)
	})
}

// Delete removes an object.
func (s *Server) Delete(ctx context.Context, bucket, key string) error {
	_, err := s.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("delete s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// Counter is an HTTP proxy in front of a Server that counts the requests
// passing through it, for tests that check how many a reader makes. The
// requests and answers are the server's own; the proxy only forwards them
// (the Host header is kept, so SigV4 signatures made for the proxy's
// address hold).
type Counter struct {
	srv *httptest.Server
	mu  sync.Mutex
	n   map[string]int
	per map[string]map[string]int // kind -> "/bucket/key" -> requests
}

// Kinds of requests a Counter tells apart.
const (
	ReqGet  = "GET"  // GetObject, ranged or not
	ReqHead = "HEAD" // HeadObject
	ReqList = "LIST" // ListObjectsV2 (a GET on the bucket)
)

// Count starts a counting proxy in front of s; it stops when t ends. Point
// source.s3.endpoint at its Endpoint.
func (s *Server) Count(t testing.TB) *Counter {
	t.Helper()
	if s.opts.CertFile != "" {
		t.Fatal("s3test: Count proxies plain HTTP only")
	}
	target, err := url.Parse(s.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	c := &Counter{n: map[string]int{}, per: map[string]map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := r.Method
		if r.Method == http.MethodGet && r.URL.Query().Has("list-type") {
			kind = ReqList
		}
		c.mu.Lock()
		c.n[kind]++
		if c.per[kind] == nil {
			c.per[kind] = map[string]int{}
		}
		c.per[kind][r.URL.Path]++
		c.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// Endpoint is the proxy's URL.
func (c *Counter) Endpoint() string { return c.srv.URL }

// N is the number of requests of a kind (ReqGet, ReqHead, ReqList, or
// another HTTP method) since the start or the last Reset.
func (c *Counter) N(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[kind]
}

// Paths is the number of requests of a kind per URL path ("/bucket/key"
// for an object, since path-style addressing is the only one a loopback
// server takes).
func (c *Counter) Paths(kind string) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for p, n := range c.per[kind] {
		out[p] = n
	}
	return out
}

// Reset sets every count back to zero.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.n)
	clear(c.per)
}
