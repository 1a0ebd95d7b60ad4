package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/meta"
	"storm/node"
)

// connect opens etcd for a client subcommand.
func connect(ctx context.Context, s *settings) (*clientv3.Client, meta.Job, error) {
	job, err := meta.NewJob(s.Etcd.Prefix, s.Job.ID)
	if err != nil {
		return nil, job, &node.ExitError{Code: node.ExitUsage, Err: err}
	}
	cli, err := node.ConnectEtcd(ctx, s.etcdAccess(), s.Node.StartTimeout)
	return cli, job, err
}

// runWait blocks until the barrier exists; exits like a node would.
func runWait(ctx context.Context, args []string, stdout io.Writer) error {
	fs := commonFlags("wait")
	timeout := fs.Duration("timeout", 0, "give up after this long (exit 3); 0 waits forever")
	asJSON := fs.Bool("json", false, "print the barrier as JSON")
	_, cli, job, err := openJob(ctx, fs, args)
	if err != nil {
		return err
	}
	defer cli.Close()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	b, err := meta.WaitBarrier(ctx, cli, job)
	if err != nil {
		return &node.ExitError{Code: node.ExitLost, Err: fmt.Errorf("waiting for %s: %w", job.Barrier(), err)}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(b); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "job %s %s: %d rows in %d shards, %.1fs\n", b.Job, b.Status, b.Rows, b.Shards, b.Seconds)
		if b.Reason != "" {
			fmt.Fprintf(stdout, "reason: %s\n", b.Reason)
		}
		if b.TiKV != "" {
			fmt.Fprintf(stdout, "tikv: %s\n", b.TiKV)
		}
	}
	if code := b.ExitCode(); code != node.ExitOK {
		return &node.ExitError{Code: code}
	}
	return nil
}
