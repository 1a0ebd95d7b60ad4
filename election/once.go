// Package election makes exactly one node run a phase of a job to completion,
// on etcd's concurrency elections.
//
// Once(ctx, ...) returns when the phase's marker exists. fn runs only on the
// node that leads the phase's election and only while the marker is absent.
// fn's context is cancelled the moment the node's session (and with it the
// leadership) is lost; every write fn makes through its Leader is an etcd Txn
// guarded by the election key's create revision, so a leader that lost its
// lease can write nothing. A leader that dies mid-phase is replaced by the
// next campaigner, which runs fn again: fn must be idempotent.
package election

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"storm/meta"
)

// ErrNotLeader means a guarded write was refused: leadership is gone.
var ErrNotLeader = errors.New("election: not the leader any more")

// Failure marks an error of fn that fails the phase for good: it is recorded
// in the marker (the phase is complete, with an error) instead of being
// retried by the next leader.
type Failure struct{ Err error }

func (f *Failure) Error() string { return f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// Fail wraps err as a Failure.
func Fail(err error) error { return &Failure{Err: err} }

// Func is a phase's work. Its summary is stored in the marker.
type Func func(ctx context.Context, l *Leader) (summary any, err error)

// Once runs fn to completion once per job for the phase, on whichever node
// wins the election, and returns the phase's marker.
func Once(ctx context.Context, s *concurrency.Session, job meta.Job, phase meta.Phase, node string, fn Func) (meta.PhaseMarker, error) {
	cli := s.Client()
	markerKey := job.PhaseMarker(phase)
	m, rev, err := readMarker(ctx, cli, markerKey)
	if err != nil || m != nil {
		return deref(m), err
	}

	// Stop campaigning as soon as another leader writes the marker.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer cancel()
		for resp := range cli.Watch(cctx, markerKey, clientv3.WithRev(rev+1)) {
			if len(resp.Events) > 0 || resp.Err() != nil {
				return
			}
		}
	}()

	e := concurrency.NewElection(s, job.Election(phase))
	if err := e.Campaign(cctx, node); err != nil {
		if ctx.Err() != nil {
			return meta.PhaseMarker{}, ctx.Err()
		}
		// The marker appeared (or the watch broke): look again.
		return Once(ctx, s, job, phase, node, fn)
	}
	l := &Leader{cli: cli, e: e, node: node}
	defer func() {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		_ = e.Resign(rctx)
	}()

	// The previous leader may have finished between our read and our win.
	if m, _, err := readMarker(ctx, cli, markerKey); err != nil || m != nil {
		return deref(m), err
	}

	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	go func() {
		select {
		case <-s.Done():
			lcancel()
		case <-lctx.Done():
		}
	}()

	summary, err := fn(lctx, l)
	marker := meta.PhaseMarker{Phase: phase, By: node, At: time.Now().UTC()}
	var failure *Failure
	switch {
	case errors.As(err, &failure):
		marker.Error = failure.Error()
	case err != nil:
		return meta.PhaseMarker{}, fmt.Errorf("phase %s: %w", phase, err)
	}
	if summary != nil {
		marker.Summary = []byte(meta.Encode(summary))
	}
	if err := l.Commit(lctx, clientv3.OpPut(markerKey, meta.Encode(marker))); err != nil {
		return meta.PhaseMarker{}, fmt.Errorf("phase %s: write marker: %w", phase, err)
	}
	return marker, nil
}

func readMarker(ctx context.Context, cli *clientv3.Client, key string) (*meta.PhaseMarker, int64, error) {
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, resp.Header.Revision, nil
	}
	var m meta.PhaseMarker
	if err := meta.Decode(key, resp.Kvs[0].Value, &m); err != nil {
		return nil, 0, err
	}
	return &m, resp.Header.Revision, nil
}

func deref(m *meta.PhaseMarker) meta.PhaseMarker {
	if m == nil {
		return meta.PhaseMarker{}
	}
	return *m
}
