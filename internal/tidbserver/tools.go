//go:build tools

// Package tidbserver pins TiDB's own server command so that `go build
// github.com/pingcap/tidb/cmd/tidb-server` in this module builds the real TiDB
// SQL layer, with its embedded unistore storage, for storm's TiDB tests. It is
// a module of its own because TiDB pins an older gRPC than etcd 3.7 needs.
package tidbserver

import _ "github.com/pingcap/tidb/cmd/tidb-server"
