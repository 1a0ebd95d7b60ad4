package storage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

const s3Scheme = "s3://"

// S3Config is a node's [source.s3] settings. The keys are per node and never
// leave it: not in the job spec, etcd, status output or logs.
type S3Config struct {
	Endpoint       string // "" for AWS itself
	Region         string // "" takes the AWS chain's, else us-east-1
	ForcePathStyle bool   // http://endpoint/bucket/key rather than http://bucket.endpoint/key
	CAFile         string // PEM bundle trusted for an https endpoint
	// AccessKey and SecretKey, when set, replace the AWS credential chain
	// (environment, shared files, instance roles).
	AccessKey, SecretKey string
	// Log gets a line for each read retried (nil: slog's default).
	Log *slog.Logger
}

var (
	s3Mu     sync.Mutex
	s3Conf   S3Config
	s3Shared *s3Client
)

// ConfigureS3 sets the S3 settings of this process; the client is made on
// first use.
func ConfigureS3(c S3Config) {
	s3Mu.Lock()
	defer s3Mu.Unlock()
	s3Conf, s3Shared = c, nil
}

// Retry budget of one S3 call or read: how long it keeps trying while
// nothing gets through, and the longest wait between tries. A read that
// makes progress starts its budget afresh.
var (
	retryBudget  = 2 * time.Minute
	retryMaxWait = 5 * time.Second
	// readStall ends a GET whose body stops flowing, so it is retried.
	readStall = 60 * time.Second
)

type s3Client struct {
	log      *slog.Logger
	api      *s3.Client
	endpoint string // for messages: the endpoint or "AWS S3"
	static   bool   // credentials from source.s3.access-key
}

// location is a bucket and a key (or a key prefix, without "/" at its end).
type location struct{ bucket, key string }

// CheckURL says what is wrong with an s3:// URL, if anything.
func CheckURL(url string) error {
	_, err := parseS3(url)
	return err
}

func parseS3(path string) (location, error) {
	rest, ok := strings.CutPrefix(path, s3Scheme)
	if !ok {
		return location{}, fmt.Errorf("%s: not an s3:// URL", path)
	}
	b, k, _ := strings.Cut(rest, "/")
	if b == "" {
		return location{}, fmt.Errorf("%s: no bucket in the URL (want s3://bucket/prefix)", path)
	}
	return location{bucket: b, key: strings.Trim(k, "/")}, nil
}

func s3For(path string) (*s3Client, location, error) {
	loc, err := parseS3(path)
	if err != nil {
		return nil, loc, err
	}
	s3Mu.Lock()
	defer s3Mu.Unlock()
	if s3Shared == nil {
		c, err := newS3Client(s3Conf)
		if err != nil {
			return nil, loc, err
		}
		s3Shared = c
	}
	return s3Shared, loc, nil
}

func newS3Client(c S3Config) (*s3Client, error) {
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.ResponseHeaderTimeout = 30 * time.Second
	})
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("source.s3.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("source.s3.ca %s: no PEM certificate in it", c.CAFile)
		}
		hc = hc.WithTransportOptions(func(t *http.Transport) {
			t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		})
	}
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(hc),
		// storm retries itself, from the offset a read reached (get below).
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, "")))
	}
	ac, err := config.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("S3 settings: %w", err)
	}
	if ac.Region == "" {
		ac.Region = "us-east-1"
	}
	api := s3.NewFromConfig(ac, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.ForcePathStyle
		// Ranged reads cannot be checked against a whole-object checksum,
		// and S3-compatible servers differ in what they support.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	ep := c.Endpoint
	if ep == "" {
		ep = "AWS S3 (region " + ac.Region + ")"
	}
	log := c.Log
	if log == nil {
		log = slog.Default()
	}
	return &s3Client{log: log, api: api, endpoint: ep, static: c.AccessKey != ""}, nil
}

// explain turns an S3 error into one that says what to fix. It never
// includes a secret: the SDK's errors carry none.
func (c *s3Client) explain(what string, loc location, err error) error {
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	creds := "source.s3.access-key and source.s3.secret-access-key (or secret-access-key-file)"
	if !c.static {
		creds = "the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the shared credentials file, or source.s3.access-key and secret-access-key)"
	}
	switch {
	case code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "InvalidToken" || code == "ExpiredToken" ||
		code == "XAdminUserNotFound": // versitygw's InvalidAccessKeyId
		return fmt.Errorf("%s s3://%s/%s at %s: credentials refused (%s): check %s", what, loc.bucket, loc.key, c.endpoint, code, creds)
	case code == "AccessDenied" || code == "Forbidden" || httpStatus(err) == http.StatusForbidden:
		return fmt.Errorf("%s s3://%s/%s at %s: access denied: check %s and that they may read the bucket", what, loc.bucket, loc.key, c.endpoint, creds)
	case code == "NoSuchBucket":
		return fmt.Errorf("%s s3://%s/%s at %s: no bucket %q: check source.dir / [[source.dirs]] and source.s3.endpoint", what, loc.bucket, loc.key, c.endpoint, loc.bucket)
	case isCertificate(err):
		return fmt.Errorf("%s s3://%s/%s at %s: the server's certificate is not trusted: set source.s3.ca to the CA that signed it: %w",
			what, loc.bucket, loc.key, c.endpoint, err)
	case isCredentialChain(err):
		return fmt.Errorf("%s s3://%s/%s at %s: no credentials: set %s: %w", what, loc.bucket, loc.key, c.endpoint, creds, err)
	}
	return fmt.Errorf("%s s3://%s/%s at %s: %w", what, loc.bucket, loc.key, c.endpoint, err)
}

func isCertificate(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he)
}

func isCredentialChain(err error) bool {
	return err != nil && strings.Contains(err.Error(), "get credentials")
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// transient reports whether trying again may help: a connection or a
// server error, not a refusal.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil || isCredentialChain(err) || isCertificate(err) {
		return false
	}
	if s := httpStatus(err); s != 0 {
		return s >= 500 || s == http.StatusTooManyRequests || s == http.StatusRequestTimeout
	}
	return true
}

// retrier is the one retry policy of every S3 call and read: a failure is
// tried again when it is transient (not a refusal: 403, 404, 412, a bad
// certificate, missing credentials), until retryBudget has passed since
// the first failed try after the last progress, waiting 100 ms before the
// first retry and twice as long before each next one, up to retryMaxWait.
// A read that gets bytes through calls progress: its budget and backoff
// start afresh, and it goes on from the offset reached.
type retrier struct {
	ctx   context.Context
	since time.Time     // when the first failed try since the last progress began; zero: none
	wait  time.Duration // before the next try
	// log, when set, is told of each retry.
	log func(wait time.Duration, err error)
}

const firstWait = 100 * time.Millisecond

func newRetrier(ctx context.Context, log func(time.Duration, error)) *retrier {
	return &retrier{ctx: ctx, wait: firstWait, log: log}
}

// progress says bytes got through.
func (r *retrier) progress() { r.since, r.wait = time.Time{}, firstWait }

// again is called with the error of a try that began at began. It waits
// out the backoff and returns nil when the try is to be made again;
// otherwise it returns what to give up with: err itself for a refusal,
// ErrUnavailable wrapping err when the budget is spent, and the context's
// error (wrapping err) when ctx ends.
func (r *retrier) again(err error, began time.Time) error {
	if r.ctx.Err() != nil {
		return fmt.Errorf("%w (after %w)", r.ctx.Err(), err)
	}
	if !transient(r.ctx, err) {
		return err
	}
	if r.since.IsZero() {
		r.since = began
	}
	if d := time.Since(r.since); d > retryBudget {
		return fmt.Errorf("%w: gave up after %s: %w", ErrUnavailable, d.Round(time.Second), err)
	}
	if r.log != nil {
		r.log(r.wait, err)
	}
	select {
	case <-time.After(r.wait):
	case <-r.ctx.Done():
		return fmt.Errorf("%w (after %w)", r.ctx.Err(), err)
	}
	r.wait = min(r.wait*2, retryMaxWait)
	return nil
}

// retry calls fn (an S3 call that moves no bytes to resume from) until it
// succeeds or the retrier gives up.
func retry(ctx context.Context, fn func() error) error {
	r := newRetrier(ctx, nil)
	for {
		began := time.Now()
		err := fn()
		if err == nil {
			return nil
		}
		if err := r.again(err, began); err != nil {
			return err
		}
	}
}

func (c *s3Client) list(ctx context.Context, root location, tree bool) ([]Entry, error) {
	prefix := root.key
	if prefix != "" {
		prefix += "/"
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(root.bucket), Prefix: aws.String(prefix)}
	if !tree {
		in.Delimiter = aws.String("/")
	}
	var out []Entry
	rootURL := s3Scheme + root.bucket + "/" + root.key
	for {
		var resp *s3.ListObjectsV2Output
		err := retry(ctx, func() (err error) {
			resp, err = c.api.ListObjectsV2(ctx, in)
			return err
		})
		if err != nil {
			return nil, c.explain("list", root, err)
		}
		for _, o := range resp.Contents {
			rel := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			if rel == "" || strings.HasSuffix(rel, "/") {
				continue // a "directory" marker
			}
			out = append(out, Entry{Path: Join(rootURL, rel), Rel: rel, Size: aws.ToInt64(o.Size), ETag: aws.ToString(o.ETag), Regular: true})
		}
		for _, p := range resp.CommonPrefixes {
			rel := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(p.Prefix), prefix), "/")
			out = append(out, Entry{Path: Join(rootURL, rel), Rel: rel})
		}
		if !aws.ToBool(resp.IsTruncated) || resp.NextContinuationToken == nil {
			return out, nil
		}
		in.ContinuationToken = resp.NextContinuationToken
	}
}

func (c *s3Client) stat(ctx context.Context, loc location, path string) (Version, error) {
	var resp *s3.HeadObjectOutput
	err := retry(ctx, func() (err error) {
		resp, err = c.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(loc.bucket), Key: aws.String(loc.key)})
		return err
	})
	if err != nil {
		if httpStatus(err) == http.StatusNotFound {
			return Version{}, fmt.Errorf("%s: no such object at %s: %w", path, c.endpoint, os.ErrNotExist)
		}
		return Version{}, c.explain("stat", loc, err)
	}
	return Version{Size: aws.ToInt64(resp.ContentLength), ETag: aws.ToString(resp.ETag)}, nil
}

// Probe checks that this node can list root (an s3:// URL) and that
// something is there, so a wrong key, bucket or prefix is found before any
// work is claimed.
func Probe(ctx context.Context, root string) error {
	c, loc, err := s3For(root)
	if err != nil {
		return err
	}
	prefix := loc.key
	if prefix != "" {
		prefix += "/"
	}
	var resp *s3.ListObjectsV2Output
	err = retry(ctx, func() (err error) {
		resp, err = c.api.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(loc.bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(1)})
		return err
	})
	if err != nil {
		return c.explain("list", loc, err)
	}
	if len(resp.Contents) == 0 {
		return fmt.Errorf("list %s at %s: no object under prefix %q: check source.dir / [[source.dirs]]", root, c.endpoint, prefix)
	}
	return nil
}

func (c *s3Client) open(ctx context.Context, loc location, path string, want Version) (Object, error) {
	v, err := c.stat(ctx, loc, path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && want != (Version{}) {
			return nil, fmt.Errorf("%s: %w: the object is gone", path, ErrChanged)
		}
		return nil, err
	}
	if err := checkVersion(path, v, want); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	o := &s3Object{c: c, loc: loc, path: path, v: v, ctx: ctx, cancel: cancel}
	o.retry = o.retrier(&o.off)
	return o, nil
}

// retrier is the retry policy of a read, logging each retry with the
// offset *at reached.
func (o *s3Object) retrier(at *int64) *retrier {
	return newRetrier(o.ctx, func(wait time.Duration, err error) {
		o.c.log.Warn("S3 GET failed; retrying", "object", o.path, "offset", *at, "in", wait.String(), "err", err)
	})
}

// s3Object reads an object as a stream of ranged GETs, each opened when
// the last one is used up, and again from the offset reached whenever a
// connection breaks. A GET asks for a window of the object, not all the
// rest of it: one that is closed early (a shard ends, a header was read)
// would otherwise have the server send bytes nobody reads. Windows start
// at minWindow after a Seek and double while the reading goes on; with a
// hint (HintEnd), the first one reaches just past where the reader means
// to stop. Every GET is conditional on the ETag seen at open, so a replaced
// object fails rather than mixing two versions.
type s3Object struct {
	c      *s3Client
	loc    location
	path   string
	v      Version
	ctx    context.Context
	cancel context.CancelFunc

	off      int64
	hint     int64 // HintEnd's offset; 0: none
	window   int64 // the size of the next GET
	bodyEnd  int64 // the end (exclusive) of the current GET's range
	body     io.ReadCloser
	stopBody context.CancelFunc
	stall    *time.Timer
	retry    *retrier // Read's
	gets     int      // GETs made by Read, for tests
	// readAtGets counts the GETs made by ReadAt, which may be called from
	// several goroutines at once (for tests).
	readAtGets atomic.Int64
}

func (o *s3Object) Size() int64 { return o.v.Size }

const (
	minWindow = 1 << 20
	maxWindow = 64 << 20
	// hintSlack is read past a hinted end in the same GET: the last row
	// of a shard ends after the shard's nominal end.
	hintSlack = 256 << 10
)

// HintEnd says the reader will likely stop soon after offset end, so the
// next GET need not ask for more.
func (o *s3Object) HintEnd(end int64) { o.hint = end }

// nextRange is the end (exclusive) of the range the next GET asks for.
func (o *s3Object) nextRange() int64 {
	if o.window == 0 {
		o.window = minWindow
	}
	end := o.off + o.window
	if o.hint > o.off {
		end = max(o.off+minWindow, o.hint+hintSlack)
	}
	return min(end, o.v.Size)
}

func (o *s3Object) get(ctx context.Context, from, to int64) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(o.loc.bucket), Key: aws.String(o.loc.key), IfMatch: aws.String(o.v.ETag)}
	if to >= 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", from, to))
	} else {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", from))
	}
	resp, err := o.c.api.GetObject(ctx, in)
	if err != nil {
		switch httpStatus(err) {
		case http.StatusPreconditionFailed:
			return nil, fmt.Errorf("%s: %w: its ETag is no longer %s", o.path, ErrChanged, o.v.ETag)
		case http.StatusNotFound:
			return nil, fmt.Errorf("%s: %w: the object is gone", o.path, ErrChanged)
		}
		return nil, err
	}
	if e := aws.ToString(resp.ETag); e != "" && e != o.v.ETag {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %w: ETag %s, opened as %s", o.path, ErrChanged, e, o.v.ETag)
	}
	return resp.Body, nil
}

// failed decides whether a broken read (a try that began at began) is
// tried again from off, the offset reached: it waits out the backoff and
// returns nil, or returns the error to give up with. A changed object is
// never retried.
func (o *s3Object) failed(r *retrier, err error, off int64, began time.Time) error {
	if errors.Is(err, ErrChanged) {
		return err
	}
	e := r.again(err, began)
	switch {
	case e == nil:
		return nil
	case errors.Is(e, ErrUnavailable) || o.ctx.Err() != nil:
		return fmt.Errorf("read %s at offset %d: %w", o.path, off, e)
	default:
		return o.c.explain("read", o.loc, e)
	}
}

func (o *s3Object) closeBody() {
	if o.body != nil {
		o.stall.Stop()
		o.stopBody()
		o.body.Close()
		o.body = nil
	}
}

func (o *s3Object) Read(p []byte) (int, error) {
	for {
		if o.off >= o.v.Size {
			o.closeBody()
			return 0, io.EOF
		}
		if len(p) == 0 {
			return 0, nil
		}
		if o.body == nil {
			ctx, stop := context.WithCancel(o.ctx)
			end := o.nextRange()
			o.gets++
			body, err := o.get(ctx, o.off, end-1)
			if err != nil {
				stop()
				if err := o.failed(o.retry, err, o.off, time.Now()); err != nil {
					return 0, err
				}
				continue
			}
			o.body, o.stopBody, o.bodyEnd = body, stop, end
			o.stall = time.AfterFunc(readStall, stop)
		}
		n, err := o.body.Read(p[:min(int64(len(p)), o.bodyEnd-o.off)])
		o.off += int64(n)
		if n > 0 {
			o.stall.Reset(readStall)
			o.retry.progress()
		}
		if o.off >= o.bodyEnd && (err == nil || err == io.EOF) {
			// The window is used up: the next Read asks for a bigger one.
			// Reading the body's end lets its connection be reused.
			if err == nil {
				_, _ = io.CopyN(io.Discard, o.body, 1)
			}
			o.closeBody()
			o.window = min(o.window*2, maxWindow)
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err == nil {
			if n > 0 {
				return n, nil
			}
			continue
		}
		// The body ended early or broke: go on from o.off with a new GET.
		o.closeBody()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		o.c.log.Warn("S3 read cut; going on from the offset reached", "object", o.path, "offset", o.off, "err", err)
		if n > 0 {
			return n, nil
		}
		if err := o.failed(o.retry, err, o.off, time.Now()); err != nil {
			return 0, err
		}
	}
}

func (o *s3Object) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.off
	case io.SeekEnd:
		offset += o.v.Size
	}
	if offset < 0 {
		return 0, fmt.Errorf("%s: seek to negative offset %d", o.path, offset)
	}
	if offset != o.off {
		o.closeBody()
		o.off, o.window = offset, minWindow
	}
	return offset, nil
}

// stallReader restarts its timer each time bytes arrive: the timer ends a
// body that has stopped flowing, not one that is merely long.
type stallReader struct {
	r     io.Reader
	timer *time.Timer
}

func (s stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(readStall)
	}
	return n, err
}

// ReadAt reads p from off with one ranged GET (more if it breaks).
func (o *s3Object) ReadAt(p []byte, off int64) (int, error) {
	if off >= o.v.Size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), o.v.Size-off)
	got := int64(0)
	at := off // for the retrier's log
	r := o.retrier(&at)
	for got < want {
		// Like Read, a GET whose body stops flowing is ended after
		// readStall and asked again from the offset reached.
		began := time.Now()
		ctx, stop := context.WithCancel(o.ctx)
		stall := time.AfterFunc(readStall, stop)
		o.readAtGets.Add(1)
		body, err := o.get(ctx, off+got, off+want-1)
		if err == nil {
			var n int
			n, err = io.ReadFull(stallReader{body, stall}, p[got:want])
			body.Close()
			got += int64(n)
			if n > 0 {
				r.progress()
				began = time.Now()
			}
		}
		stall.Stop()
		stop()
		if err == nil {
			break
		}
		at = off + got
		if err := o.failed(r, err, at, began); err != nil {
			return int(got), err
		}
	}
	if want < int64(len(p)) {
		return int(got), io.EOF
	}
	return int(got), nil
}

func (o *s3Object) Close() error {
	o.closeBody()
	o.cancel()
	return nil
}
