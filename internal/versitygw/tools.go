//go:build tools

// Package versitygw pins versitygw, an S3 gateway that serves a local
// directory as buckets, so that `go build github.com/versity/versitygw/cmd/versitygw`
// in this module builds the real S3 server storm's object-storage tests run
// against. It is a module of its own so that its dependencies never touch
// storm's own go.mod.
package versitygw

import _ "github.com/versity/versitygw/cmd/versitygw"
