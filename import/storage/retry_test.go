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
