package sink

// Several SQL servers behind one target (a TiDB cluster's tidb-servers): the
// pool's connections are opened round-robin over them, from a starting
// server of the node's own, so that every node's connections, and with them
// its batches, spread over all of them. A server that refuses or drops a new
// connection is skipped for a while, doubling up to a minute, so batches go
// to the others; its connections already in the pool fail on their next
// use, database/sql drops them, and the batch is retried on a new
// connection (retry in errors.go) to a server that answers. Only when every
// server fails does a connection fail.

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
)

const (
	hostBackoff    = time.Second
	hostMaxBackoff = time.Minute
)

// StartFor is a node's first server out of n: its id hashed, so that nodes
// begin on different servers without agreeing on anything.
func StartFor(node string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(node))
	return int(h.Sum32() % uint32(n))
}

// sqlServer is one SQL server of the list and what this node knows of it.
type sqlServer struct {
	addr   string
	conn   driver.Connector
	opened atomic.Int64

	mu        sync.Mutex
	downUntil time.Time
	backoff   time.Duration
}

func (s *sqlServer) down(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Before(s.downUntil)
}

func (s *sqlServer) fail(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backoff = min(max(2*s.backoff, hostBackoff), hostMaxBackoff)
	s.downUntil = now.Add(s.backoff)
}

func (s *sqlServer) ok() {
	s.opened.Add(1)
	s.mu.Lock()
	s.backoff, s.downUntil = 0, time.Time{}
	s.mu.Unlock()
}

// hostConnector opens each connection on the next server that answers.
type hostConnector struct {
	servers []*sqlServer
	next    atomic.Uint64
	drv     driver.Driver
}

func (h *hostConnector) Driver() driver.Driver { return h.drv }

func (h *hostConnector) Connect(ctx context.Context) (driver.Conn, error) {
	n := uint64(len(h.servers))
	first := h.next.Add(1) - 1
	var errs []error
	tried := make([]bool, n)
	// Servers that answered lately first, in turn; then, rather than fail,
	// those skipped for having failed before this call.
	for _, wantDown := range []bool{false, true} {
		for i := range n {
			k := (first + i) % n
			s := h.servers[k]
			if tried[k] || s.down(time.Now()) != wantDown {
				continue
			}
			tried[k] = true
			c, err := s.conn.Connect(ctx)
			if err == nil {
				s.ok()
				return c, nil
			}
			if ctx.Err() != nil {
				return nil, err
			}
			if refusedLogin(err) {
				// The server answered: a refused login is not a dead server,
				// and every server of the set would refuse it alike.
				return nil, fmt.Errorf("%s: %w", s.addr, err)
			}
			// Too many connections, shutting down, any other answer: this
			// server can't take the connection now; another may.
			s.fail(time.Now())
			errs = append(errs, fmt.Errorf("%s: %w", s.addr, err))
		}
	}
	return nil, errors.Join(errs...)
}

// refusedLogin says the server refused the user, its password or its
// database: the same on every server of the set.
func refusedLogin(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case 1044, 1045, 1049: // ER_DBACCESS_DENIED_ERROR, ER_ACCESS_DENIED_ERROR, ER_BAD_DB_ERROR
		return true
	}
	return false
}

// Opened counts the connections opened on each server, by address.
func (t *Target) Opened() map[string]int64 {
	out := map[string]int64{}
	for _, s := range t.servers {
		out[s.addr] = s.opened.Load()
	}
	return out
}
