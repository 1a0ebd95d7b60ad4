// Command storm imports mydumper/Dumpling dumps into MySQL-compatible
// databases from many equal peer nodes, coordinated through etcd.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"storm/node"
)

const usageText = `storm: parallel bulk import into TiDB and MySQL-compatible databases

usage:
  storm node   --config storm.toml [--embed-etcd] [--node-id ID] [--workers N] [--status-addr HOST:PORT]
  storm wait   --config storm.toml       block until the job's barrier exists
  storm status --config storm.toml [--json] [--watch [--interval 1s]]
  storm cancel --config storm.toml [--reason TEXT]      (= storm job cancel)
  storm job    list | show | cancel | retry | forget    (storm job help)
  storm plan   --config storm.toml --dry-run [--node-id ID] [--json]
                                         check sources and target, print the shard plan; writes nothing

exit codes: 0 job succeeded, 1 job failed or cancelled, 2 usage or config
error, 3 lost coordination (restartable).
`

type command func(ctx context.Context, args []string, stdout io.Writer) error

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return node.ExitUsage
	}
	cmds := map[string]command{
		"node":   runNode,
		"wait":   runWait,
		"status": runStatus,
		"cancel": runCancel,
		"job":    runJob,
		"plan":   runPlan,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
			fmt.Fprint(stdout, usageText)
			return node.ExitOK
		}
		fmt.Fprintf(stderr, "storm: unknown command %q\n\n%s", args[0], usageText)
		return node.ExitUsage
	}
	err := cmd(ctx, args[1:], stdout)
	if err == nil {
		return node.ExitOK
	}
	var ee *node.ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintf(stderr, "storm %s: %v\n", args[0], ee.Err)
		}
		return ee.Code
	}
	if errors.Is(err, pflag.ErrHelp) {
		return node.ExitOK
	}
	fmt.Fprintf(stderr, "storm %s: %v\n", args[0], err)
	return node.ExitUsage
}

// parse parses flags and the config; any problem is a usage error.
func parse(fs *pflag.FlagSet, args []string) (*settings, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, err
		}
		return nil, &node.ExitError{Code: node.ExitUsage, Err: err}
	}
	s, err := load(fs)
	if err != nil {
		return nil, &node.ExitError{Code: node.ExitUsage, Err: err}
	}
	return s, nil
}

func newLogger(s *settings, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(s.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if s.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func runNode(ctx context.Context, args []string, stdout io.Writer) error {
	fs := commonFlags("node")
	embed := fs.Bool("embed-etcd", false, "run an embedded etcd serving the first etcd.endpoints address")
	fs.String("node-id", "", "node id (node.id; default: the hostname)")
	fs.Int("workers", 0, "shard workers (node.workers)")
	fs.String("status-addr", "", "serve /metrics, /status and /debug/pprof here (node.status-addr)")
	s, err := parse(fs, args)
	if err != nil {
		return err
	}
	cfg := s.nodeConfig()
	cfg.Embed = *embed
	cfg.Console = node.NewConsole(os.Stderr)
	cfg.Log = newLogger(s, cfg.Console)
	for _, w := range s.securityWarnings() { // config_tls.go
		cfg.Log.Warn(w)
	}
	cfg.Out = stdout
	code, err := node.Run(ctx, cfg)
	if err != nil {
		return &node.ExitError{Code: code, Err: err}
	}
	if code != node.ExitOK {
		return &node.ExitError{Code: code}
	}
	return nil
}
