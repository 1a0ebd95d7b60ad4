package jobctl

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/internal/etcdcluster"
	"storm/meta"
)

// `storm status --watch` follows a job through etcd losing its quorum: the
// watch is cancelled (no leader) and reads fail while two of three members
// are down; once they are back it reads the job again and sees the
// barrier, instead of exiting with the first error.
func TestWatchStatusOutlivesLostQuorum(t *testing.T) {
	c := etcdcluster.Start(t, 3)
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	job, err := meta.NewJob("/storm", "watched")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	put := func(key string, v any) {
		t.Helper()
		for {
			_, err := cli.Put(ctx, key, meta.Encode(v))
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("put %s: %v", key, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	put(job.Spec(), meta.SpecRecord{CreatedAt: time.Now()})
	put(job.Key(meta.KindShards, "s1"), meta.Shard{ID: "s1", Bytes: 10})

	var mu sync.Mutex
	var seen []*Status
	first := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- WatchStatus(ctx, cli, job, 100*time.Millisecond, func(st *Status) bool {
			mu.Lock()
			defer mu.Unlock()
			if len(seen) == 0 {
				close(first)
			}
			seen = append(seen, st)
			return st.Barrier == nil
		})
	}()
	select {
	case <-first:
	case err := <-done:
		t.Fatalf("watch ended before its first status: %v", err)
	case <-ctx.Done():
		t.Fatal("no first status")
	}

	c.Kill(1)
	c.Kill(2)
	// The remaining member loses its leader within a few election
	// timeouts (1 s each here) and cancels the watch.
	select {
	case err := <-done:
		t.Fatalf("watch ended while etcd had no quorum: %v", err)
	case <-time.After(8 * time.Second):
	}
	c.Restart(1)
	c.Restart(2)
	c.WaitHealthy(60 * time.Second)
	put(job.Barrier(), meta.Barrier{Job: job.ID, Status: meta.StatusSucceeded})

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the watch did not see the barrier written after the quorum came back")
	}
	mu.Lock()
	defer mu.Unlock()
	if last := seen[len(seen)-1]; last.Barrier == nil || last.Barrier.Status != meta.StatusSucceeded {
		t.Fatalf("last status %+v", last)
	}
}
