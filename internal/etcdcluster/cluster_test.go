package etcdcluster

import (
	"context"
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
	// in flight times out while the others elect a leader (longer on a
	// loaded machine): writes succeed again within the deadline.
	for {
		_, err := cli.Put(ctx, "k", "2")
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("write with one member down: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.Restart(0)
	c.WaitHealthy(30 * time.Second)
	resp, err := cli.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "2" {
		t.Fatalf("read after restart: %v %v", resp, err)
	}
}
