package main

import (
	"strings"
	"testing"
)

// [source.s3]: the secret comes from the config, STORM_SOURCE_S3_SECRET_ACCESS_KEY
// or a file, never two of them; the keys reach the node's config and never
// the spec; bad combinations are refused naming the key.
func TestS3Settings(t *testing.T) {
	secretFile := writePW(t, "s3-Secret-1\n", 0o600)
	s, err := loadConfig(t, `[source.s3]
endpoint = "http://127.0.0.1:9000"
region = "eu-west-3"
force-path-style = true
access-key = "AKIDSTORM"
secret-access-key-file = "`+secretFile+`"
`)
	if err != nil {
		t.Fatal(err)
	}
	c := s.nodeConfig().S3
	if c.Endpoint != "http://127.0.0.1:9000" || c.Region != "eu-west-3" || !c.ForcePathStyle || c.AccessKey != "AKIDSTORM" || c.SecretKey != "s3-Secret-1" {
		t.Fatalf("node S3 config %+v", c)
	}
	if spec := fmtSpec(s); strings.Contains(spec, "s3-Secret-1") || strings.Contains(spec, "AKIDSTORM") || strings.Contains(spec, "9000") {
		t.Fatalf("[source.s3] reached the spec: %s", spec)
	}

	t.Setenv("STORM_SOURCE_S3_SECRET_ACCESS_KEY", "env-Secret-2")
	if s, err = loadConfig(t, "[source.s3]\naccess-key = \"AKIDSTORM\"\n"); err != nil || s.nodeConfig().S3.SecretKey != "env-Secret-2" {
		t.Fatalf("secret from the environment: %v", err)
	}
	for _, c := range []struct{ toml, want string }{
		{"[source.s3]\naccess-key = \"AK\"\nsecret-access-key-file = \"" + secretFile + "\"\n", "source.s3.secret-access-key (or STORM_SOURCE_S3_SECRET_ACCESS_KEY) and source.s3.secret-access-key-file are both set"},
		{"[source.s3]\nendpoint = \"127.0.0.1:9000\"\n", `source.s3.endpoint "127.0.0.1:9000": want an http:// or https:// URL`},
		{"[source.s3]\nca = \"/no/such/ca.pem\"\n", "source.s3.ca"},
		{"[[source.dirs]]\nid = \"b\"\ndir = \"s3:///prefix\"\n", `source "b": s3:///prefix: no bucket in the URL (want s3://bucket/prefix)`},
	} {
		_, err := loadConfig(t, c.toml)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.toml, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "env-Secret-2") {
			t.Errorf("the secret is in the error: %v", err)
		}
	}
	t.Setenv("STORM_SOURCE_S3_SECRET_ACCESS_KEY", "")
	if _, err := loadConfig(t, "[source.s3]\naccess-key = \"AK\"\n"); err == nil || !strings.Contains(err.Error(), "source.s3.access-key and source.s3.secret-access-key") {
		t.Errorf("an access key without a secret: %v", err)
	}
}
