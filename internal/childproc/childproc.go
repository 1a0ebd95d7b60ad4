// Package childproc starts the private servers tests run (MariaDB, TiDB) as
// children that die with the test process, on free loopback ports.
package childproc

import (
	"net"
	"os/exec"
	"runtime"
)

// FreePort is a loopback TCP port nobody listened on a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
