package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"

	"storm/node"
)

// runPlan is `storm plan --dry-run`: what the plan would find and do, from
// this host, writing nothing. It exits 1 when a check fails.
func runPlan(ctx context.Context, args []string, stdout io.Writer) error {
	fs := commonFlags("plan")
	fs.Bool("dry-run", true, "check and print the plan without writing (the only mode)")
	fs.String("node-id", "", "plan as this node (node.id): which node-local sources it can read")
	fs.Int("workers", 0, "node.workers, for the connection check")
	asJSON := fs.Bool("json", false, "print JSON")
	s, err := parse(fs, args)
	if err != nil {
		return err
	}
	cfg := s.nodeConfig()
	d, err := node.PlanDryRun(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return err
		}
	} else {
		d.Print(stdout)
	}
	if !d.OK() {
		return &node.ExitError{Code: node.ExitJobFailed, Err: errors.New("some checks failed: see above")}
	}
	return nil
}
