package s3test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The server keeps its objects across a restart on the same port, and
// refuses a client without its keys.
func TestServerRestartAndKeys(t *testing.T) {
	s := StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "bkt", "a/b.csv", []byte("1,2\n")); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("a/b.csv")})
	if err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(body) != "1,2\n" || aws.ToString(out.ETag) == "" {
		t.Fatalf("after a restart: %q, ETag %q", body, aws.ToString(out.ETag))
	}
	stranger := s3.New(s3.Options{BaseEndpoint: aws.String(s.Endpoint()), Region: Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, "not-"+s.SecretKey, "")})
	if _, err := stranger.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bkt")}); err == nil {
		t.Fatal("a client with a wrong secret listed the bucket")
	}
}
