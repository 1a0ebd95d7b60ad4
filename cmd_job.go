package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/jobctl"
	"storm/meta"
	"storm/node"
)

const jobUsage = `usage:
  storm job list   [--config storm.toml] [--json]        the jobs under etcd.prefix, with their state
  storm job show   [JOB] [--json] [--watch]              one job's status (as storm status)
  storm job cancel [JOB] [--reason TEXT]                ask the nodes to stop; the job finalizes as cancelled
  storm job retry  [JOB]                                re-open a failed or cancelled job, then start nodes again
  storm job forget [JOB] --yes [--force]                delete every key of a finished job with no live node

JOB defaults to the config's job.id (--job, STORM_JOB_ID).
`

// runJob dispatches `storm job <verb>`.
func runJob(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return &node.ExitError{Code: node.ExitUsage, Err: errors.New("a verb is missing\n" + jobUsage)}
	}
	verbs := map[string]command{
		"list":   runJobList,
		"show":   runJobShow,
		"cancel": runCancel,
		"retry":  runJobRetry,
		"forget": runJobForget,
	}
	verb, ok := verbs[args[0]]
	if !ok {
		if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
			fmt.Fprint(stdout, jobUsage)
			return nil
		}
		return &node.ExitError{Code: node.ExitUsage, Err: fmt.Errorf("unknown verb %q\n%s", args[0], jobUsage)}
	}
	return verb(ctx, args[1:], stdout)
}

// openJob parses a job subcommand's flags and job id and connects to etcd.
func openJob(ctx context.Context, fs *pflag.FlagSet, args []string) (*settings, *clientv3.Client, meta.Job, error) {
	s, err := parseJobArgs(fs, args, true)
	if err != nil {
		return nil, nil, meta.Job{}, err
	}
	cli, job, err := connect(ctx, s)
	return s, cli, job, err
}

// parseJobArgs parses flags and an optional positional job id (it wins over
// the config's job.id); needJob=false lets the config go without one.
func parseJobArgs(fs *pflag.FlagSet, args []string, needJob bool) (*settings, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, err
		}
		return nil, &node.ExitError{Code: node.ExitUsage, Err: err}
	}
	switch fs.NArg() {
	case 0:
	case 1:
		if err := fs.Set("job", fs.Arg(0)); err != nil {
			return nil, &node.ExitError{Code: node.ExitUsage, Err: err}
		}
	default:
		return nil, &node.ExitError{Code: node.ExitUsage, Err: fmt.Errorf("unexpected arguments %q", fs.Args()[1:])}
	}
	// A client needs etcd and the job, not what only nodes use: a config
	// problem of the nodes' (a source, the import) is theirs to report.
	s, err := load(fs)
	if s == nil {
		return nil, &node.ExitError{Code: node.ExitUsage, Err: err}
	}
	if err := s.validateClient(needJob); err != nil {
		return nil, &node.ExitError{Code: node.ExitUsage, Err: err}
	}
	for _, w := range s.secrets.warnings {
		fmt.Fprintf(os.Stderr, "storm: warning: %s\n", w)
	}
	return s, nil
}

// validateClient checks what the client subcommands use.
func (s *settings) validateClient(needJob bool) error {
	if len(s.Etcd.Endpoints) == 0 {
		return errors.New("config: etcd.endpoints is empty")
	}
	if _, err := meta.NewJob(s.Etcd.Prefix, "-"); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if needJob {
		if _, err := meta.NewJob(s.Etcd.Prefix, s.Job.ID); err != nil {
			return fmt.Errorf("config: job.id: %w", err)
		}
	}
	if bad := s.validateEtcdSecurity(); len(bad) > 0 { // config_tls.go
		return fmt.Errorf("config: %s", strings.Join(bad, "; "))
	}
	return nil
}

// runJobList lists the jobs under the prefix, one line each.
func runJobList(ctx context.Context, args []string, stdout io.Writer) error {
	fs := commonFlags("job list")
	asJSON := fs.Bool("json", false, "print a JSON array of the jobs' status documents")
	s, err := parseJobArgs(fs, args, false)
	if err != nil {
		return err
	}
	cli, err := node.ConnectEtcd(ctx, s.etcdAccess(), s.Node.StartTimeout)
	if err != nil {
		return err
	}
	defer cli.Close()
	ids, err := jobctl.ListJobs(ctx, cli, s.Etcd.Prefix)
	if err != nil {
		return &node.ExitError{Code: node.ExitLost, Err: err}
	}
	sts := []*jobctl.Status{}
	for _, id := range ids {
		job, err := meta.NewJob(s.Etcd.Prefix, id)
		if err != nil {
			continue
		}
		st, err := jobctl.ReadStatus(ctx, cli, job)
		if err != nil {
			return &node.ExitError{Code: node.ExitLost, Err: err}
		}
		sts = append(sts, st)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sts)
	}
	if len(sts) == 0 {
		fmt.Fprintf(stdout, "no jobs under %s/jobs/\n", strings.TrimRight(s.Etcd.Prefix, "/"))
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTATE\tPHASE\tSHARDS\tDONE\tIN WORK\tFAILED\tROWS\tNODES\tSTARTED")
	for _, st := range sts {
		started := "-"
		if !st.CreatedAt.IsZero() {
			started = st.CreatedAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", st.Job, st.State, st.Phase, st.Shards, st.Done, st.Claimed,
			st.Failed, st.Rows, len(st.Nodes), started)
	}
	return tw.Flush()
}

func runJobShow(ctx context.Context, args []string, stdout io.Writer) error {
	fs := commonFlags("job show")
	f := addStatusFlags(fs)
	s, err := parseJobArgs(fs, args, true)
	if err != nil {
		return err
	}
	return showStatus(ctx, s, f, stdout)
}

// runCancel is `storm cancel` and `storm job cancel`: it writes the cancel
// key, unless the job has finished already.
func runCancel(ctx context.Context, args []string, stdout io.Writer) error {
	fs := commonFlags("cancel")
	reason := fs.String("reason", "", "why, recorded in the barrier")
	_, cli, job, err := openJob(ctx, fs, args)
	if err != nil {
		return err
	}
	defer cli.Close()
	host, _ := os.Hostname()
	req := meta.CancelRequest{By: "storm cancel on " + host, Reason: *reason, At: time.Now().UTC()}
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(job.Barrier()), "=", 0)).
		Then(clientv3.OpPut(job.Cancel(), meta.Encode(req))).
		Else(clientv3.OpGet(job.Barrier())).
		Commit()
	if err != nil {
		return &node.ExitError{Code: node.ExitLost, Err: err}
	}
	if !resp.Succeeded {
		var b meta.Barrier
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			_ = meta.Decode(job.Barrier(), kvs[0].Value, &b)
		}
		fmt.Fprintf(stdout, "job %s has finished already (%s): nothing to cancel\n", job.ID, b.Status)
		return nil
	}
	fmt.Fprintf(stdout, "cancel requested for job %s: nodes stop and the job finalizes as cancelled\n", job.ID)
	return nil
}

func runJobRetry(ctx context.Context, args []string, stdout io.Writer) error {
	fs := commonFlags("job retry")
	_, cli, job, err := openJob(ctx, fs, args)
	if err != nil {
		return err
	}
	defer cli.Close()
	res, err := jobctl.RetryJob(ctx, cli, job)
	if err != nil {
		return &node.ExitError{Code: node.ExitUsage, Err: err}
	}
	fmt.Fprintf(stdout, "job %s re-opened (it was %s: %s)\n", job.ID, res.Was, res.Reason)
	if res.Replan {
		fmt.Fprintln(stdout, "the plan failed: it runs again")
	}
	if len(res.Sources) > 0 {
		fmt.Fprintf(stdout, "the plan of source(s) %s failed: it runs again\n", strings.Join(res.Sources, ", "))
	}
	if res.Reprepare {
		fmt.Fprintln(stdout, "prepare failed: it runs again")
	}
	if len(res.Failed) > 0 {
		fmt.Fprintf(stdout, "%d failed shard(s) will be claimed again: %s\n", len(res.Failed), strings.Join(res.Failed, ", "))
	}
	fmt.Fprintln(stdout, "done shards stay done; verify and finalize run again. Start the nodes again (storm node, or systemctl restart storm@"+job.ID+").")
	return nil
}

func runJobForget(ctx context.Context, args []string, stdout io.Writer) error {
	fs := commonFlags("job forget")
	yes := fs.Bool("yes", false, "really delete the job's keys")
	force := fs.Bool("force", false, "forget a job that has no barrier (abandoned: no node will finish it)")
	_, cli, job, err := openJob(ctx, fs, args)
	if err != nil {
		return err
	}
	defer cli.Close()
	if !*yes {
		resp, err := cli.Get(ctx, job.Root(), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return &node.ExitError{Code: node.ExitLost, Err: err}
		}
		return &node.ExitError{Code: node.ExitUsage, Err: fmt.Errorf("this would delete the %d key(s) under %s: add --yes", resp.Count, job.Root())}
	}
	n, err := jobctl.ForgetJob(ctx, cli, job, *force)
	if err != nil {
		return &node.ExitError{Code: node.ExitUsage, Err: err}
	}
	fmt.Fprintf(stdout, "job %s forgotten: %d key(s) under %s deleted\n", job.ID, n, job.Root())
	fmt.Fprintf(stdout, "the target keeps the job's checkpoints: before reusing the id, DELETE FROM storm_meta.checkpoints WHERE job = '%s'\n", job.ID)
	return nil
}
