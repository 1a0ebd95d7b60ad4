// Command devdb runs a private MariaDB for the demo and the benchmarks until
// it is signalled, printing how to reach it as key=value lines.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

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
	srv, err := mariadbtest.Start(ctx, *dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "devdb:", err)
		os.Exit(1)
	}
	// A spare free port, for scripts that need one more (the demo's etcd).
	spare := 0
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		spare = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	fmt.Printf("host=%s\nuser=%s\npassword=%s\nfree_port=%d\nport=%d\n", srv.Host, srv.User, srv.Password, spare, srv.Port)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	srv.Stop()
}
