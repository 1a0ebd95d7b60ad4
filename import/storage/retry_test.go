package storage

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func status(code int) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: errors.New("api error")}}
}

// Which failures a read or a listing tries again: the server's troubles and
// broken connections, not its refusals or an untrusted certificate.
func TestTransient(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"500", context.Background(), status(500), true},
		{"503 slow down", context.Background(), status(503), true},
		{"429", context.Background(), status(429), true},
		{"connection reset", context.Background(), fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"connection refused", context.Background(), fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"body cut", context.Background(), io.ErrUnexpectedEOF, true},
		{"403", context.Background(), status(403), false},
		{"404", context.Background(), status(404), false},
		{"412 precondition", context.Background(), status(412), false},
		{"unknown CA", context.Background(), fmt.Errorf("tls: %w", x509.UnknownAuthorityError{}), false},
		{"no credentials", context.Background(), errors.New("get identity: get credentials: failed to refresh cached credentials"), false},
		{"cancelled", cancelled, syscall.ECONNRESET, false},
	} {
		if got := transient(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s: transient(%v) = %v", tc.name, tc.err, got)
		}
	}
}

// The one retry policy of S3 calls and reads: refusals are given up at
// once, transient failures are tried again until the budget is spent (then
// the error wraps ErrUnavailable), a cancelled context ends the retries,
// and progress starts the budget and the backoff afresh.
func TestRetrier(t *testing.T) {
	oldBudget, oldWait := retryBudget, retryMaxWait
	t.Cleanup(func() { retryBudget, retryMaxWait = oldBudget, oldWait })
	retryBudget, retryMaxWait = 300*time.Millisecond, 20*time.Millisecond
	reset := fmt.Errorf("read: %w", syscall.ECONNRESET)
	for _, tc := range []struct {
		name      string
		errs      []error // the tries' errors in turn; the last one repeats
		cancel    bool
		wantCalls int // 0: more than one, until the budget is spent
		want      func(error) bool
	}{
		{"success", []error{nil}, false, 1, func(err error) bool { return err == nil }},
		{"transient, then success", []error{reset, status(503), nil}, false, 3, func(err error) bool { return err == nil }},
		{"403 at once", []error{status(403)}, false, 1, func(err error) bool { return httpStatus(err) == 403 && !errors.Is(err, ErrUnavailable) }},
		{"404 at once", []error{status(404)}, false, 1, func(err error) bool { return httpStatus(err) == 404 }},
		{"412 at once", []error{status(412)}, false, 1, func(err error) bool { return httpStatus(err) == 412 }},
		{"bad certificate at once", []error{fmt.Errorf("tls: %w", x509.UnknownAuthorityError{})}, false, 1,
			func(err error) bool { return isCertificate(err) }},
		{"transient until the budget is spent", []error{reset}, false, 0,
			func(err error) bool { return errors.Is(err, ErrUnavailable) && errors.Is(err, syscall.ECONNRESET) }},
		{"cancelled", []error{reset}, true, 1, func(err error) bool { return errors.Is(err, context.Canceled) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			err := retry(ctx, func() error {
				calls++
				if tc.cancel {
					cancel()
				}
				return tc.errs[min(calls, len(tc.errs))-1]
			})
			if !tc.want(err) {
				t.Errorf("gave up with %v", err)
			}
			if (tc.wantCalls == 0 && calls < 2) || (tc.wantCalls > 0 && calls != tc.wantCalls) {
				t.Errorf("%d tries, want %d (0: several)", calls, tc.wantCalls)
			}
		})
	}

	// A read that gets bytes through between failures is never given up,
	// however long it goes on: each failure after progress has the whole
	// budget, and the first wait again.
	r := newRetrier(context.Background(), nil)
	for range 4 {
		// Each try failed after half the budget.
		if err := r.again(reset, time.Now().Add(-retryBudget/2)); err != nil {
			t.Fatalf("a failure after progress given up: %v", err)
		}
		if r.wait != 2*firstWait && r.wait != retryMaxWait {
			t.Fatalf("backoff %s after one failure", r.wait)
		}
		r.progress()
	}
	// Without progress, a failure past the budget is given up.
	if err := r.again(reset, time.Now().Add(-2*retryBudget)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("past the budget: %v", err)
	}
}
