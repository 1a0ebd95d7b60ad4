package etcdcluster

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestKillAndRestartMember(t *testing.T) {
	c := Start(t, 3)
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "1"); err != nil {
		t.Fatal(err)
	}
	c.Kill(0)
	// Two of three members keep quorum. If the killed one led, a write
	// in flight times out while the others elect a leader (seconds on a
	// loaded machine): writes succeed again within the deadline.
	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	for {
		_, err := cli.Put(wctx, "k", "2")
		if err == nil {
			break
		}
		if wctx.Err() != nil {
			t.Fatalf("write with one member down: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.Restart(0)
	c.WaitHealthy(30 * time.Second)
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	resp, err := cli.Get(rctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "2" {
		t.Fatalf("read after restart: %v %v", resp, err)
	}
}

// A member whose peer port is taken exits at start; the other two would
// make a quorum and answer reads, so only a check of every member sees it.
func TestStartSeesAMemberThatExits(t *testing.T) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd binary not found: %v", err)
	}
	c := &Cluster{t: t, bin: bin, dir: t.TempDir()}
	if err := c.allocate(3); err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", strings.TrimPrefix(c.members[1].peer, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for i := range c.members {
		c.run(i, "new")
	}
	defer c.stopAll()
	err = c.waitMembers(30 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "member m1") {
		t.Fatalf("waitMembers: %v, want member m1 named", err)
	}
}
