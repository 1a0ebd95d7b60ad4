// Command runner runs one or more commands at once, waits for all of them,
// and reports the wall time and each command's peak resident set size, for
// scripts/bench/run.sh.
//
//	runner -label NAME [-o FILE] -- CMD ARGS... [--- CMD ARGS...]...
//	runner -free-ports N
//
// The commands start together; the wall time runs from the first start to
// the last exit. Peak RSS is ProcessState.SysUsage().(*syscall.Rusage).Maxrss
// of each command, in KiB: wait4's ru_maxrss, which on Linux is the largest
// peak RSS of the process itself and of every descendant it waited for, the
// largest single process, never a sum. So for a shell script that starts
// four mariadb clients and waits, it is the biggest of the shell and the
// clients; for a storm node, the node itself. A descendant the command did
// not wait for (a daemon) is not counted, and neither is the server a
// client talks to.
//
// One line of JSON goes to -o (appended) and to stderr. The exit status is
// 1 if any command failed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Result is one line of the runner's output.
type Result struct {
	Label    string    `json:"label"`
	Start    time.Time `json:"start"`
	WallSec  float64   `json:"wall_s"`
	Exit     []int     `json:"exit"`
	RSSKiB   []int64   `json:"maxrss_kib"`     // per command
	MaxRSS   int64     `json:"max_maxrss_kib"` // the largest of them
	UserSec  float64   `json:"user_s"`         // CPU of the commands and their waited-for descendants
	SysSec   float64   `json:"sys_s"`
	Commands []string  `json:"commands"`
	// ServerSec is the CPU the server process (-server-pid) used during
	// the run: the work a loader made the database do, which on a machine
	// whose cores are all busy costs wall time as much as the loader's own.
	ServerSec float64 `json:"server_cpu_s,omitempty"`
}

func main() {
	label := flag.String("label", "", "name of the run, copied into the result")
	out := flag.String("o", "", "append the JSON result to this file")
	ports := flag.Int("free-ports", 0, "instead: print this many free loopback ports, one a line, and exit")
	serverPID := flag.Int("server-pid", 0, "also report the CPU seconds this process (the database server) used during the run")
	flag.Parse()
	if *ports > 0 {
		freePorts(*ports)
		return
	}
	cmds := split(flag.Args())
	if len(cmds) == 0 {
		fmt.Fprintln(os.Stderr, "usage: runner -label NAME [-o FILE] -- CMD ARGS... [--- CMD ARGS...]...")
		os.Exit(2)
	}
	res := Result{Label: *label, Exit: make([]int, len(cmds)), RSSKiB: make([]int64, len(cmds))}
	procs := make([]*exec.Cmd, len(cmds))
	for i, argv := range cmds {
		c := exec.Command(argv[0], argv[1:]...)
		c.Stdin, c.Stdout, c.Stderr = nil, os.Stdout, os.Stderr
		procs[i] = c
		res.Commands = append(res.Commands, fmt.Sprint(argv))
	}
	serverBefore := cpuSeconds(*serverPID)
	res.Start = time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, c := range procs {
		if err := c.Start(); err != nil {
			fmt.Fprintf(os.Stderr, "runner: start %v: %v\n", cmds[i], err)
			res.Exit[i] = -1
			continue
		}
		wg.Go(func() {
			err := c.Wait()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Exit[i] = c.ProcessState.ExitCode()
				if res.Exit[i] == 0 {
					res.Exit[i] = -1
				}
			}
			if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
				res.RSSKiB[i] = ru.Maxrss
				res.MaxRSS = max(res.MaxRSS, ru.Maxrss)
			}
			res.UserSec += c.ProcessState.UserTime().Seconds()
			res.SysSec += c.ProcessState.SystemTime().Seconds()
		})
	}
	wg.Wait()
	res.WallSec = time.Since(res.Start).Seconds()
	if *serverPID > 0 {
		res.ServerSec = cpuSeconds(*serverPID) - serverBefore
	}

	line, _ := json.Marshal(res)
	fmt.Fprintln(os.Stderr, string(line))
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "runner:", err)
			os.Exit(1)
		}
		fmt.Fprintln(f, string(line))
		f.Close()
	}
	for _, code := range res.Exit {
		if code != 0 {
			os.Exit(1)
		}
	}
}

// cpuSeconds is a process's user+system CPU so far, from /proc/PID/stat
// (fields 14 and 15, in clock ticks of 1/100 s on Linux); 0 for pid 0 or a
// process that is gone.
func cpuSeconds(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100
}

// split cuts the arguments into commands at "---".
func split(args []string) [][]string {
	var cmds [][]string
	var cur []string
	for _, a := range args {
		if a == "---" {
			if len(cur) > 0 {
				cmds = append(cmds, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, a)
	}
	if len(cur) > 0 {
		cmds = append(cmds, cur)
	}
	return cmds
}

// freePorts prints n distinct loopback ports nobody listens on right now.
func freePorts(n int) {
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "runner:", err)
			os.Exit(1)
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
}
