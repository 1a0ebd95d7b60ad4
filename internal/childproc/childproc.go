// Package childproc starts the private servers tests run (MariaDB, TiDB) as
// children that die with the test process, on free loopback ports.
package childproc

import (
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// FreePort is a loopback TCP port nobody listened on a moment ago, for a
// server the caller starts next. It is drawn at random from below the
// kernel's ephemeral range, not asked of the kernel (":0"): a port from
// that range can be taken, between this call and the server's bind, as
// the local port of any outgoing connection, and a test run makes
// thousands of them (storm nodes, MariaDB and etcd clients). A server that
// lost its port that way fails at start, or, as one member of a test etcd
// cluster, leaves the cluster a member short.
func FreePort() (int, error) {
	lo, hi := 10000, ephemeralStart()
	for try := 0; try < 100 && hi > lo; try++ {
		p := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			l.Close()
			return p, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralStart is the first port of the kernel's ephemeral range
// (Linux's default when it can't be read).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if p, err := strconv.Atoi(f[0]); err == nil {
				return p
			}
		}
	}
	return 32768
}

// starts runs every cmd.Start on one OS thread that never exits. Pdeathsig
// fires when the thread that forked the child exits, not the process: a
// server started from an ordinary goroutine can be killed mid-test when the
// runtime retires that thread. With this, it dies only with the process.
var starts = func() chan func() {
	ch := make(chan func())
	go func() {
		runtime.LockOSThread()
		for f := range ch {
			f()
		}
	}()
	return ch
}()

// Start starts cmd from that thread; set cmd.SysProcAttr.Pdeathsig first.
func Start(cmd *exec.Cmd) error {
	done := make(chan error)
	starts <- func() { done <- cmd.Start() }
	return <-done
}
