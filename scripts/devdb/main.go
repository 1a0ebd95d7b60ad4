// Command devdb runs a private MariaDB for the demo and the benchmarks until
// it is signalled, printing how to reach it as key=value lines.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"storm/internal/etcdserver"
	"storm/internal/mariadbtest"
)

func main() {
	dir := flag.String("dir", "", "data directory (created)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "devdb: -dir is required")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	// A bulk load's redo log: the benchmarks measure loaders, not checkpoints.
	srv, err := mariadbtest.StartWith(ctx, *dir, mariadbtest.Options{RedoLogMiB: 256})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "devdb:", err)
		os.Exit(1)
	}
	// A spare free port whose next port is free too, for scripts that need
	// one more: the demo's embedded etcd serves its peers on port + 1.
	spare, err := etcdserver.FreeClientPort()
	if err != nil {
		fmt.Fprintln(os.Stderr, "devdb:", err)
	}
	fmt.Printf("host=%s\nuser=%s\npassword=%s\nfree_port=%d\nport=%d\n", srv.Host, srv.User, srv.Password, spare, srv.Port)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	srv.Stop()
}
