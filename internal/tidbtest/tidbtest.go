// Package tidbtest runs a private TiDB server for tests: TiDB's own
// tidb-server, built from the module in internal/tidbserver (`make
// tidb-server`), with its embedded unistore storage in a temp dir, on a free
// loopback port. It is the real TiDB SQL layer (parser, planner, executor,
// transactions); only the storage under it is TiDB's single-process
// unistore instead of TiKV.
package tidbtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"storm/internal/childproc"
)

// BinaryEnv names the environment variable that holds the path of the
// tidb-server binary; `make tidb-server` builds it into bin/.
const BinaryEnv = "STORM_TIDB_SERVER"

// Server is a running private TiDB.
type Server struct {
	Host       string
	Port       int
	StatusPort int
	User       string // root, no password: TiDB's bootstrap user
	Password   string
	Dir        string

	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
	once sync.Once
}

// Options tune the server.
type Options struct {
	// Config is TOML for tidb-server's -config file, e.g.
	// "[performance]\ntxn-total-size-limit = 1048576".
	Config string
	// TxnMode, when set, is the global tidb_txn_mode: pessimistic (TiDB's
	// default) or optimistic.
	TxnMode string
}

// Binary finds tidb-server: $STORM_TIDB_SERVER, or bin/tidb-server above
// the working directory.
func Binary() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("tidb-server from $%s: %w", BinaryEnv, err)
		}
		return p, nil
	}
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "bin", "tidb-server")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return "", fmt.Errorf("tidb-server not found: run `make tidb-server` (it builds internal/tidbserver into bin/) or set $%s", BinaryEnv)
}

// Start runs a TiDB server with its data under dir and waits until it
// takes SQL connections.
func Start(ctx context.Context, dir string, opts Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", User: "root", Dir: dir, done: make(chan struct{})}
	if s.Port, err = childproc.FreePort(); err != nil {
		return nil, err
	}
	if s.StatusPort, err = childproc.FreePort(); err != nil {
		return nil, err
	}
	args := []string{"-store", "unistore", "-path", filepath.Join(dir, "store"),
		"-host", s.Host, "-P", strconv.Itoa(s.Port), "-status", strconv.Itoa(s.StatusPort),
		"-L", "warn", "-log-file", filepath.Join(dir, "tidb.log")}
	if opts.Config != "" {
		conf := filepath.Join(dir, "tidb.toml")
		if err := os.WriteFile(conf, []byte(opts.Config), 0o644); err != nil {
			return nil, err
		}
		args = append(args, "-config", conf)
	}
	if s.log, err = os.Create(filepath.Join(dir, "tidb.out")); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.Dir = dir // it writes tidb-slow.log where it runs
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := childproc.Start(s.cmd); err != nil {
		s.log.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	// A cold unistore bootstraps its system tables first: seconds.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-s.done:
			s.log.Close()
			return nil, fmt.Errorf("tidb-server on port %d exited at start: %s", s.Port, s.tail())
		default:
		}
		if err := s.ping(ctx); err == nil {
			if err := s.setTxnMode(ctx, opts.TxnMode); err != nil {
				s.Stop()
				return nil, err
			}
			return s, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.Stop()
			return nil, fmt.Errorf("tidb-server on port %d not ready: %s", s.Port, s.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// StartT is Start for one test: the server stops when the test ends, and
// a server that does not start fails the test.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Start(ctx, filepath.Join(t.TempDir(), "tidb"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) ping(ctx context.Context) error {
	c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
	if err != nil {
		return err
	}
	c.Close()
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.PingContext(pctx)
}

func (s *Server) setTxnMode(ctx context.Context, mode string) error {
	if mode == "" {
		return nil
	}
	db, err := s.Open("")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "SET GLOBAL tidb_txn_mode = ?", mode); err != nil {
		return fmt.Errorf("tidb_txn_mode %s: %w", mode, err)
	}
	return nil
}

// tail is the end of the server's log, for errors.
func (s *Server) tail() string {
	var out []string
	for _, name := range []string{"tidb.out", "tidb.log"} {
		b, _ := os.ReadFile(filepath.Join(s.Dir, name))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 10 {
			lines = lines[len(lines)-10:]
		}
		out = append(out, lines...)
	}
	return strings.Join(out, "\n")
}

// Addr is host:port of the SQL port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// DSN is a go-sql-driver DSN for db ("" for none).
func (s *Server) DSN(db string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = s.User, s.Password
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", s.Addr(), db
	cfg.AllowNativePasswords = true
	cfg.Timeout = 5 * time.Second
	return cfg.FormatDSN()
}

// Open is a pool on db.
func (s *Server) Open(db string) (*sql.DB, error) { return sql.Open("mysql", s.DSN(db)) }

// Stop kills the server and waits for it; its data dir stays for the
// caller to remove.
func (s *Server) Stop() {
	s.once.Do(func() {
		if s.cmd.Process != nil {
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		}
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
		}
		s.log.Close()
	})
}
