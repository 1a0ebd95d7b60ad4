package meta

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storm/internal/etcdserver"
)

// txnFaults makes the client's next Txns fail with Unavailable, as a
// connection cut with the request in flight does: "drop" fails one before
// it reaches etcd, "lose" lets etcd apply it and loses the answer.
type txnFaults struct {
	mu    sync.Mutex
	queue []string
	sent  int // Txns that reached etcd
}

func (f *txnFaults) next(kinds ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, kinds...)
}

func (f *txnFaults) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if method != "/etcdserverpb.KV/Txn" {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	f.mu.Lock()
	fault := ""
	if len(f.queue) > 0 {
		fault, f.queue = f.queue[0], f.queue[1:]
	}
	if fault != "drop" {
		f.sent++
	}
	f.mu.Unlock()
	lost := status.Error(codes.Unavailable, "error reading from server: EOF (injected)")
	switch fault {
	case "drop":
		return lost
	case "lose":
		if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
			return err
		}
		return lost
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func faultyClient(t *testing.T) (*clientv3.Client, *clientv3.Client, *txnFaults) {
	t.Helper()
	srv, direct := etcdserver.StartT(t)
	f := &txnFaults{}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.ClientURL}, DialTimeout: 5 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(f.intercept)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, direct, f
}

// A Txn whose answer is lost is sent again, and a claim, completion or
// failure that the lost try applied is recognised as this call's own: a
// claim left unrecognised would sit on its owner's lease unworked, and a
// node that gave up on a lost answer dropped all its work.
func TestPoolSurvivesLostAnswers(t *testing.T) {
	cli, direct, f := faultyClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := concurrency.NewSession(direct, concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	peer, err := concurrency.NewSession(direct, concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()

	tests := []struct {
		name   string
		faults []string
		// peerFirst: a peer claims the shard before this node tries.
		peerFirst bool
		// settle: "complete" or "fail" after the claim, under the faults
		// (the claim itself then runs clean).
		settle string
		// staleEpoch settles with an epoch that is not the claim's.
		staleEpoch bool
		want       bool
		wantSent   int
	}{
		{name: "claim, answer lost", faults: []string{"lose"}, want: true, wantSent: 2},
		{name: "claim, answer lost twice", faults: []string{"lose", "lose"}, want: true, wantSent: 3},
		{name: "claim, request dropped", faults: []string{"drop"}, want: true, wantSent: 1},
		{name: "claim held by a peer, answer lost", faults: []string{"lose"}, peerFirst: true, want: false, wantSent: 2},
		{name: "complete, answer lost", faults: []string{"lose"}, settle: "complete", want: true, wantSent: 2},
		{name: "complete, dropped then lost", faults: []string{"drop", "lose"}, settle: "complete", want: true, wantSent: 2},
		{name: "complete with a stale epoch, answer lost", faults: []string{"lose"}, settle: "complete", staleEpoch: true, want: false, wantSent: 2},
		{name: "fail, answer lost", faults: []string{"lose"}, settle: "fail", want: true, wantSent: 2},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job, _ := NewJob("/storm", "lost-"+strings.Repeat("x", i+1))
			id := "s1"
			if tt.peerFirst {
				if _, ok, err := ClaimShard(ctx, direct, job, id, "peer", peer.Lease()); err != nil || !ok {
					t.Fatalf("peer claim: %v %v", ok, err)
				}
			}
			if tt.settle == "" {
				f.next(tt.faults...)
				f.sent = 0
				epoch, ok, err := ClaimShard(ctx, cli, job, id, "me", sess.Lease())
				if err != nil || ok != tt.want {
					t.Fatalf("claim: ok %v, err %v; want ok %v", ok, err, tt.want)
				}
				if f.sent != tt.wantSent {
					t.Errorf("%d Txns reached etcd, want %d", f.sent, tt.wantSent)
				}
				resp, err := direct.Get(ctx, job.Claim(id))
				if err != nil || len(resp.Kvs) != 1 {
					t.Fatalf("claim key: %v %v", resp, err)
				}
				kv := resp.Kvs[0]
				var c Claim
				if err := Decode(string(kv.Key), kv.Value, &c); err != nil {
					t.Fatal(err)
				}
				if tt.want && (epoch != kv.ModRevision || c.Node != "me" || kv.Lease != int64(sess.Lease())) {
					t.Errorf("epoch %d, claim %+v at revision %d on lease %x: want ours", epoch, c, kv.ModRevision, kv.Lease)
				}
				if !tt.want && c.Node != "peer" {
					t.Errorf("the peer's claim was replaced: %+v", c)
				}
				return
			}
			epoch, ok, err := ClaimShard(ctx, cli, job, id, "me", sess.Lease())
			if err != nil || !ok {
				t.Fatalf("claim: %v %v", ok, err)
			}
			if tt.staleEpoch {
				epoch--
			}
			f.next(tt.faults...)
			f.sent = 0
			switch tt.settle {
			case "complete":
				ok, err = CompleteShard(ctx, cli, job, id, epoch, Done{Rows: 7, Node: "me", Epoch: epoch})
			case "fail":
				ok, err = FailShard(ctx, cli, job, id, epoch, Failed{Shard: id, Reason: "bad row", Node: "me"})
			}
			if err != nil || ok != tt.want {
				t.Fatalf("%s: ok %v, err %v; want ok %v", tt.settle, ok, err, tt.want)
			}
			if f.sent != tt.wantSent {
				t.Errorf("%d Txns reached etcd, want %d", f.sent, tt.wantSent)
			}
			record := job.Done(id)
			if tt.settle == "fail" {
				record = job.Failed(id)
			}
			resp, err := direct.Txn(ctx).Then(clientv3.OpGet(record), clientv3.OpGet(job.Claim(id))).Commit()
			if err != nil {
				t.Fatal(err)
			}
			recorded := len(resp.Responses[0].GetResponseRange().Kvs) == 1
			claimed := len(resp.Responses[1].GetResponseRange().Kvs) == 1
			if recorded != tt.want || claimed == tt.want {
				t.Errorf("record written %v, claim left %v; want the record %v", recorded, claimed, tt.want)
			}
		})
	}
}

// What sending again can't mend is returned at once: a lease that is gone
// (the session is lost; the node must join again), and a ctx that ends
// while etcd stays away.
func TestPoolGivesUp(t *testing.T) {
	cli, direct, f := faultyClient(t)
	job, _ := NewJob("/storm", "gives-up")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	lease, err := direct.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, _, err := ClaimShard(ctx, cli, job, "s1", "me", lease.ID); err == nil || Transient(ctx, err) {
		t.Fatalf("claim on a revoked lease: %v, want a lasting error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a lasting error took %s", d)
	}

	f.next("drop", "drop", "drop", "drop", "drop", "drop", "drop", "drop", "drop", "drop", "drop", "drop")
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	_, _, err = ClaimShard(short, cli, job, "s1", "me", 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("claim while etcd stays away: %v, want the ctx's end", err)
	}
}

func TestTransientErrors(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithCancel(live)
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"connection cut", live, status.Error(codes.Unavailable, "error reading from server: EOF"), true},
		{"leader changed", live, fmt.Errorf("claim import s1: %w", rpctypes.ErrLeaderChanged), true},
		{"no leader", live, rpctypes.ErrNoLeader, true},
		{"lease not found, as the client returns it", live, rpctypes.ErrLeaseNotFound, false},
		{"not an etcd error", live, errors.New("disk full"), false},
		{"etcd overloaded", live, status.Error(codes.ResourceExhausted, "etcdserver: too many requests"), true},
		{"lease not found", live, status.Error(codes.NotFound, "etcdserver: requested lease not found"), false},
		{"refused", live, status.Error(codes.InvalidArgument, "etcdserver: too many operations in txn request"), false},
		{"ctx ended", ended, status.Error(codes.Unavailable, "error reading from server: EOF"), false},
	}
	for _, tt := range tests {
		if got := Transient(tt.ctx, tt.err); got != tt.want {
			t.Errorf("%s: Transient(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// PutOwned writes only while the claim of its epoch stands: a table's
// steps hand their verify ranges on under their own claim, and an owner
// that lost it (to a lease that ended) writes nothing.
func TestPutOwned(t *testing.T) {
	_, cli := etcdserver.StartT(t)
	ctx := t.Context()
	job, _ := NewJob("/storm", "j")
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	epoch, ok, err := StepPool.Claim(ctx, cli, job, "d.t", "n1", sess.Lease())
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	put := func(id string) clientv3.Op { return clientv3.OpPut(job.Key(KindVerifyRanges, id), "{}") }
	for _, tc := range []struct {
		name    string
		epoch   int64
		release bool
		want    bool
	}{
		{"owner", epoch, false, true},
		{"stale epoch", epoch - 1, false, false},
		{"after release", epoch, true, false},
	} {
		if tc.release {
			if err := StepPool.Release(ctx, cli, job, "d.t", epoch); err != nil {
				t.Fatal(err)
			}
		}
		ok, err := StepPool.PutOwned(ctx, cli, job, "d.t", tc.epoch, put(tc.name))
		if err != nil || ok != tc.want {
			t.Errorf("%s: PutOwned = %v, %v; want %v", tc.name, ok, err, tc.want)
		}
		resp, err := cli.Get(ctx, job.Key(KindVerifyRanges, tc.name))
		if err != nil || (len(resp.Kvs) == 1) != tc.want {
			t.Errorf("%s: range written: %v (err %v), want %v", tc.name, len(resp.Kvs) == 1, err, tc.want)
		}
	}
}
