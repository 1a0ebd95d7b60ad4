// Package etcdcluster runs a multi-member etcd cluster of real etcd
// processes (Debian's etcd-server) on loopback ports, for tests that kill
// and restart members under a running import.
package etcdcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/internal/etcdserver"
)

// Cluster is a running cluster.
type Cluster struct {
	t       testing.TB
	bin     string
	dir     string
	members []*member
	initial string
}

type member struct {
	name, client, peer, dir string
	cmd                     *exec.Cmd
	done                    chan struct{}
}

// Start launches n members and waits until the cluster answers. It fails
// the test (never skips) when the etcd binary is missing.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd binary not found: install Debian's etcd-server (scripts/setup.sh): %v", err)
	}
	c := &Cluster{t: t, bin: bin, dir: t.TempDir()}
	var initial []string
	for i := 0; i < n; i++ {
		cp, err1 := etcdserver.FreePort()
		pp, err2 := etcdserver.FreePort()
		if err1 != nil || err2 != nil {
			t.Fatalf("free ports: %v %v", err1, err2)
		}
		m := &member{
			name:   fmt.Sprintf("m%d", i),
			client: fmt.Sprintf("http://127.0.0.1:%d", cp),
			peer:   fmt.Sprintf("http://127.0.0.1:%d", pp),
		}
		m.dir = filepath.Join(c.dir, m.name)
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peer)
	}
	c.initial = strings.Join(initial, ",")
	for i := range c.members {
		c.run(i, "new")
	}
	t.Cleanup(c.stopAll)
	c.WaitHealthy(60 * time.Second)
	return c
}

func (c *Cluster) run(i int, state string) {
	m := c.members[i]
	logf, err := os.OpenFile(filepath.Join(c.dir, m.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	m.cmd = exec.Command(c.bin,
		"--name", m.name, "--data-dir", m.dir,
		"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
		"--initial-cluster", c.initial, "--initial-cluster-state", state,
		"--initial-cluster-token", "storm-test",
		"--heartbeat-interval", "100", "--election-timeout", "1000",
	)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		c.t.Fatalf("start etcd %s: %v", m.name, err)
	}
	m.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}(m.cmd, m.done)
}

// Endpoints are the client URLs of every member.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.client)
	}
	return eps
}

// Kill SIGKILLs member i.
func (c *Cluster) Kill(i int) {
	m := c.members[i]
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
}

// Restart starts a killed member again on its data dir.
func (c *Cluster) Restart(i int) {
	c.run(i, "existing")
}

// WaitHealthy waits until a quorum read succeeds.
func (c *Cluster) WaitHealthy(timeout time.Duration) {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("etcd cluster not healthy after %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) stopAll() {
	for _, m := range c.members {
		if m.cmd == nil || m.cmd.Process == nil {
			continue
		}
		select {
		case <-m.done:
		default:
			_ = m.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-m.done:
			case <-time.After(5 * time.Second):
				_ = m.cmd.Process.Kill()
				<-m.done
			}
		}
	}
}
