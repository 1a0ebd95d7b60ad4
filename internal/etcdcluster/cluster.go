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

// Start launches n members and waits until every one of them answers. It
// fails the test (never skips) when the etcd binary is missing. A member
// that exits during the start (its port taken meanwhile, say) would leave
// a cluster that looks healthy with a quorum of the rest and loses it at
// the first kill, so the whole cluster is started again on new ports.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd binary not found: install Debian's etcd-server (scripts/setup.sh): %v", err)
	}
	const attempts = 3
	for attempt := 1; ; attempt++ {
		c := &Cluster{t: t, bin: bin, dir: t.TempDir()}
		if err := c.allocate(n); err != nil {
			t.Fatal(err)
		}
		for i := range c.members {
			c.run(i, "new")
		}
		err := c.waitMembers(60 * time.Second)
		if err == nil {
			t.Cleanup(func() {
				if t.Failed() {
					c.logTails(40)
				}
				c.stopAll()
			})
			return c
		}
		c.logTails(20)
		c.stopAll()
		if attempt == attempts {
			t.Fatalf("etcd cluster of %d: %v", n, err)
		}
		t.Logf("etcd cluster of %d, attempt %d: %v; starting again on new ports", n, attempt, err)
	}
}

// allocate picks each member's name, ports and data dir.
func (c *Cluster) allocate(n int) error {
	var initial []string
	for i := 0; i < n; i++ {
		cp, err1 := etcdserver.FreePort()
		pp, err2 := etcdserver.FreePort()
		if err1 != nil || err2 != nil {
			return fmt.Errorf("free ports: %v %v", err1, err2)
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
	return nil
}

// waitMembers waits until every member answers a status request and
// agrees on a leader; a member that exits meanwhile is an error at once.
func (c *Cluster) waitMembers(timeout time.Duration) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	for {
		var last error
		up := 0
		for _, m := range c.members {
			select {
			case <-m.done:
				return fmt.Errorf("member %s (client %s, peer %s) exited at start: %s", m.name, m.client, m.peer, m.cmd.ProcessState)
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := cli.Status(ctx, m.client)
			cancel()
			switch {
			case err != nil:
				last = fmt.Errorf("member %s: %w", m.name, err)
			case st.Leader == 0:
				last = fmt.Errorf("member %s has no leader", m.name)
			default:
				up++
			}
		}
		if up == len(c.members) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d members up after %s: %v", up, len(c.members), timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logTails logs the last lines of every member's log: what a failed test
// needs to tell a slow election from a member that died.
func (c *Cluster) logTails(lines int) {
	for _, m := range c.members {
		b, err := os.ReadFile(filepath.Join(c.dir, m.name+".log"))
		if err != nil {
			c.t.Logf("etcd %s: no log: %v", m.name, err)
			continue
		}
		all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(all) > lines {
			all = all[len(all)-lines:]
		}
		c.t.Logf("--- etcd %s (client %s, peer %s), last %d lines ---\n%s", m.name, m.client, m.peer, len(all), strings.Join(all, "\n"))
	}
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
