package election

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"storm/internal/etcdserver"
	"storm/meta"
)

func newSession(t *testing.T, cli *clientv3.Client, ttl int) *concurrency.Session {
	t.Helper()
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(ttl))
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOnceRunsExactlyOnceAcrossSessions(t *testing.T) {
	_, cli := etcdserver.StartT(t)
	job, _ := meta.NewJob("/storm", "once")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var runs atomic.Int32
	const nodes = 6
	markers := make([]meta.PhaseMarker, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := 0; i < nodes; i++ {
		s := newSession(t, cli, 5)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			markers[i], errs[i] = Once(ctx, s, job, meta.PhasePlan, fmt.Sprintf("n%d", i), func(ctx context.Context, l *Leader) (any, error) {
				runs.Add(1)
				time.Sleep(50 * time.Millisecond)
				return map[string]int{"shards": 3}, l.Commit(ctx, clientv3.OpPut(job.Shard("a"), "x"))
			})
		}(i)
	}
	wg.Wait()
	if got := runs.Load(); got != 1 {
		t.Fatalf("fn ran %d times, want 1", got)
	}
	for i := range markers {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		if markers[i].By != markers[0].By || string(markers[i].Summary) != `{"shards":3}` {
			t.Fatalf("node %d saw marker %+v, node 0 saw %+v", i, markers[i], markers[0])
		}
	}
}

func TestOnceLeaderDiesMidPhase(t *testing.T) {
	_, cli := etcdserver.StartT(t)
	job, _ := meta.NewJob("/storm", "dies")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	dying := newSession(t, cli, 2)
	survivor := newSession(t, cli, 5)
	started := make(chan struct{})
	deadErr := make(chan error, 1)
	go func() {
		_, err := Once(ctx, dying, job, meta.PhaseVerify, "dying", func(ctx context.Context, l *Leader) (any, error) {
			close(started)
			<-ctx.Done() // the session is lost while we work
			// A leader that lost its lease can write nothing.
			werr := l.Commit(context.Background(), clientv3.OpPut(job.Barrier(), "from the dead"))
			if !errors.Is(werr, ErrNotLeader) {
				return nil, fmt.Errorf("guarded write after lease loss: got %v, want ErrNotLeader", werr)
			}
			return nil, ctx.Err()
		})
		deadErr <- err
	}()
	<-started

	var survivorRan atomic.Bool
	done := make(chan meta.PhaseMarker, 1)
	go func() {
		m, err := Once(ctx, survivor, job, meta.PhaseVerify, "survivor", func(ctx context.Context, l *Leader) (any, error) {
			survivorRan.Store(true)
			return nil, nil
		})
		if err != nil {
			t.Errorf("survivor: %v", err)
		}
		done <- m
	}()
	// The leader's lease ends as a dead process's does, only sooner than
	// its TTL would end it.
	if _, err := cli.Revoke(ctx, dying.Lease()); err != nil {
		t.Fatalf("revoke: %v", err)
	}

	m := <-done
	if m.By != "survivor" || !survivorRan.Load() {
		t.Fatalf("marker %+v, survivor ran %v", m, survivorRan.Load())
	}
	if err := <-deadErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("dead leader returned %v, want its cancelled context", err)
	}
	resp, err := cli.Get(ctx, job.Barrier())
	if err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("dead leader wrote the barrier: %v %v", resp, err)
	}
}

func TestOnceFailureIsRecordedAndNotRetried(t *testing.T) {
	_, cli := etcdserver.StartT(t)
	job, _ := meta.NewJob("/storm", "fails")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newSession(t, cli, 5)

	m, err := Once(ctx, s, job, meta.PhasePlan, "a", func(ctx context.Context, l *Leader) (any, error) {
		return nil, Fail(errors.New("table shop.t is not empty"))
	})
	if err != nil || m.Error != "table shop.t is not empty" {
		t.Fatalf("marker %+v, err %v", m, err)
	}
	m2, err := Once(ctx, s, job, meta.PhasePlan, "b", func(ctx context.Context, l *Leader) (any, error) {
		t.Error("fn ran although the phase is complete")
		return nil, nil
	})
	if err != nil || m2.By != "a" {
		t.Fatalf("second Once: %+v %v", m2, err)
	}
}

func TestOnceTransientErrorLeavesPhaseOpen(t *testing.T) {
	_, cli := etcdserver.StartT(t)
	job, _ := meta.NewJob("/storm", "transient")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newSession(t, cli, 5)

	boom := errors.New("database unreachable")
	if _, err := Once(ctx, s, job, meta.PhasePlan, "a", func(ctx context.Context, l *Leader) (any, error) {
		return nil, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	m, err := Once(ctx, s, job, meta.PhasePlan, "a", func(ctx context.Context, l *Leader) (any, error) {
		return "second try", nil
	})
	if err != nil || string(m.Summary) != `"second try"` {
		t.Fatalf("retry: %+v %v", m, err)
	}
}

func TestCommitIfDistinguishesCompareFromLeadership(t *testing.T) {
	_, cli := etcdserver.StartT(t)
	job, _ := meta.NewJob("/storm", "cmp")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newSession(t, cli, 5)
	_, err := Once(ctx, s, job, meta.PhasePlan, "a", func(ctx context.Context, l *Leader) (any, error) {
		missing := clientv3.Compare(clientv3.CreateRevision(job.Spec()), "!=", 0)
		ok, err := l.CommitIf(ctx, []clientv3.Cmp{missing}, clientv3.OpPut(job.Cancel(), "x"))
		if ok || err != nil {
			return nil, fmt.Errorf("CommitIf with a false compare: ok=%v err=%v", ok, err)
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
