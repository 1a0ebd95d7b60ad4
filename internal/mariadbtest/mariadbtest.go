// Package mariadbtest runs a private MariaDB server for tests, the demo and
// the benchmarks: Debian's mariadb-install-db and mariadbd, a temp datadir,
// a free loopback port, a password-protected user. Nothing is mocked.
package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"storm/internal/childproc"
)

// Server is a running private MariaDB.
type Server struct {
	Host     string
	Port     int
	User     string
	Password string
	Dir      string
	// With Options.TLS: users with every privilege and Password that the
	// server accepts over TLS only (REQUIRE SSL), and with a client
	// certificate signed by the CA only (REQUIRE X509).
	SSLUser, X509User string

	opts Options
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// Options of StartWith.
type Options struct {
	// TLS serves TLS with these PEM files (--ssl-ca, --ssl-cert, --ssl-key).
	TLS *TLSFiles
	// RedoLogMiB is InnoDB's redo log size. A bulk load checkpoints less
	// with a bigger one (the demo and the benchmarks take 256); tests
	// default to 16, since go test runs several servers at once and each
	// one's log is a file of that size on disk.
	RedoLogMiB int
}

// TLSFiles are a server's CA, certificate and key.
type TLSFiles struct{ CA, Cert, Key string }

// Start installs a fresh datadir under dir and starts mariadbd on a free
// loopback port. The returned server's user has every privilege.
func Start(ctx context.Context, dir string) (*Server, error) {
	return StartWith(ctx, dir, Options{})
}

// StartWith is Start with options.
func StartWith(ctx context.Context, dir string, opts Options) (*Server, error) {
	if _, err := findBinary("mariadbd", "/usr/sbin/mariadbd"); err != nil {
		return nil, err
	}
	install, err := findBinary("mariadb-install-db", "/usr/bin/mariadb-install-db")
	if err != nil {
		return nil, err
	}
	if opts.RedoLogMiB == 0 {
		opts.RedoLogMiB = 16
	}
	s := &Server{Host: "127.0.0.1", User: "storm", Password: "storm-test-Pw1", Dir: dir, opts: opts}
	data := filepath.Join(dir, "data")
	for _, d := range []string{data, s.tmpdir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// The bootstrap names its temporary tables in the tmpdir in a way two
	// bootstraps at once can share (seen here: 5 of 12 concurrent installs
	// into /tmp failed with "Unknown table 'mysql.tmp_user_sys'"), so each
	// server gets a tmpdir of its own.
	out, err := exec.CommandContext(ctx, install, "--no-defaults", "--datadir="+data,
		"--tmpdir="+s.tmpdir(), "--innodb-log-file-size="+s.redoLog(),
		"--auth-root-authentication-method=socket", "--skip-test-db", "--user="+currentUser(),
		"--skip-name-resolve").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("mariadb-install-db into %s: %w\n%s\n%s", data, err, out, installErrors(out, dir))
	}
	for try := 0; ; try++ {
		port, err := childproc.FreePort()
		if err != nil {
			return nil, err
		}
		s.Port = port
		if err = s.start(ctx); err == nil {
			break
		}
		if try == 2 || ctx.Err() != nil {
			return nil, err
		}
	}
	if err := s.createUser(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if os.Getuid() == 0 {
		return "root"
	}
	return strconv.Itoa(os.Getuid())
}

func findBinary(name, fallback string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback, nil
	}
	return "", fmt.Errorf("%s not found: install Debian's mariadb-server (scripts/setup.sh)", name)
}

// installErrors repeats the lines of a failed install that say what went
// wrong, and the free space of the disk it wrote to, after the script's
// long advice, where a log cut to its tail still shows them.
func installErrors(out []byte, dir string) string {
	var b strings.Builder
	b.WriteString("mariadb-install-db failed:")
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "ERROR") || strings.Contains(l, "Error") || strings.Contains(l, "[Warning]") {
			b.WriteString("\n  " + l)
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil {
		fmt.Fprintf(&b, "\n  free space under %s: %d MiB", dir, st.Bavail*uint64(st.Bsize)>>20)
	}
	return b.String()
}

func (s *Server) tmpdir() string  { return filepath.Join(s.Dir, "tmp") }
func (s *Server) redoLog() string { return strconv.Itoa(s.opts.RedoLogMiB) + "M" }

// Socket is the server's unix socket; root connects through it.
func (s *Server) Socket() string { return filepath.Join(s.Dir, "mysqld.sock") }

func (s *Server) start(ctx context.Context) error {
	bin, err := findBinary("mariadbd", "/usr/sbin/mariadbd")
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(s.Dir, "mariadbd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := []string{
		"--no-defaults",
		"--datadir=" + filepath.Join(s.Dir, "data"),
		"--socket=" + s.Socket(),
		"--pid-file=" + filepath.Join(s.Dir, "mysqld.pid"),
		"--port=" + strconv.Itoa(s.Port),
		"--bind-address=127.0.0.1",
		"--user=" + currentUser(),
		"--skip-name-resolve",
		"--skip-log-bin",
		"--local-infile=1",
		"--max-connections=1000",
		"--innodb-buffer-pool-size=512M",
		"--innodb-log-file-size=" + s.redoLog(),
		"--tmpdir=" + s.tmpdir(),
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_bin",
		"--sql-mode=STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION",
		"--log-error=" + filepath.Join(s.Dir, "error.log"),
	}
	if t := s.opts.TLS; t != nil {
		args = append(args, "--ssl-ca="+t.CA, "--ssl-cert="+t.Cert, "--ssl-key="+t.Key)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a test's SIGINT must not reach it first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := childproc.Start(cmd); err != nil {
		logf.Close()
		return fmt.Errorf("start mariadbd: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done, s.log = cmd, done, logf
	s.mu.Unlock()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			logf.Close()
			return fmt.Errorf("mariadbd on port %d exited at start: %s", s.Port, s.errorLog())
		default:
		}
		if c, err := net.DialTimeout("unix", s.Socket(), 200*time.Millisecond); err == nil {
			c.Close()
			if c, err := net.DialTimeout("tcp", s.addr(), 200*time.Millisecond); err == nil {
				c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.Kill()
			return fmt.Errorf("mariadbd on port %d not ready: %s", s.Port, s.errorLog())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "error.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

func (s *Server) addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

func (s *Server) createUser(ctx context.Context) error {
	if err := s.CreateUser(ctx, s.User, s.Password, ""); err != nil {
		return err
	}
	if s.opts.TLS == nil {
		return nil
	}
	s.SSLUser, s.X509User = "storm_ssl", "storm_x509"
	if err := s.CreateUser(ctx, s.SSLUser, s.Password, "SSL"); err != nil {
		return err
	}
	return s.CreateUser(ctx, s.X509User, s.Password, "X509")
}

// CreateUser creates user@127.0.0.1 with every privilege, identified by
// password; require is "" or what follows REQUIRE ("SSL", "X509").
func (s *Server) CreateUser(ctx context.Context, user, password, require string) error {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "unix"
	cfg.Addr = s.Socket()
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	req := ""
	if require != "" {
		req = " REQUIRE " + require
	}
	for _, q := range []string{
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'127.0.0.1' IDENTIFIED BY '%s'%s", user, password, req),
		fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'127.0.0.1' WITH GRANT OPTION", user),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			// The statement carries the password: name the user only.
			return fmt.Errorf("mariadb on %s: create user %s: %w", s.addr(), user, err)
		}
	}
	return nil
}

// DSN is a go-sql-driver DSN for the test user, on database db ("" for none).
func (s *Server) DSN(db string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = s.User, s.Password
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", s.addr(), db
	cfg.AllowNativePasswords = true
	cfg.ParseTime = false
	return cfg.FormatDSN()
}

// Kill ends the server with SIGKILL, as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done, logf := s.cmd, s.done, s.log
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	logf.Close()
}

// Restart kills the server and starts it again on the same port and datadir
// (crash recovery included), after pause.
func (s *Server) Restart(ctx context.Context, pause time.Duration) error {
	s.Kill()
	release := s.holdPort()
	select {
	case <-time.After(pause):
	case <-ctx.Done():
		release()
		return ctx.Err()
	}
	release()
	return s.start(ctx)
}

// holdPort keeps the server's port taken while it is down: another process
// looking for a free port (a concurrent test binary starting its own
// MariaDB or etcd) would otherwise get it, and the restarted server could
// not bind it, or clients of one would talk to the other. Connections are
// closed at once, as a server that is gone would.
func (s *Server) holdPort() (release func()) {
	ln, err := net.Listen("tcp", s.addr())
	if err != nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return func() {
		ln.Close()
		<-done
	}
}

// Stop shuts the server down cleanly, or kills it after 20 s.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		s.mu.Lock()
		s.cmd = nil
		s.log.Close()
		s.mu.Unlock()
	case <-time.After(20 * time.Second):
		s.Kill()
	}
}

// ErrNotRunning is returned by Open on a stopped server.
var ErrNotRunning = errors.New("mariadbtest: server not running")

// Open returns a pool on database db for the test user.
func (s *Server) Open(db string) (*sql.DB, error) {
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if !running {
		return nil, ErrNotRunning
	}
	return sql.Open("mysql", s.DSN(db))
}

// RunTests is a TestMain body: it starts a private server into *srv, runs
// the package's tests and stops it. Without MariaDB installed it fails the
// run, naming the package to install.
func RunTests(m interface{ Run() int }, srv **Server) int {
	dir, err := os.MkdirTemp("", "storm-mariadb-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	*srv, err = Start(ctx, filepath.Join(dir, "db"))
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start MariaDB (install mariadb-server):", err)
		return 1
	}
	defer (*srv).Stop()
	return m.Run()
}
