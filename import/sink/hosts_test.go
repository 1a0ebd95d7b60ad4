package sink

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"storm/internal/faultproxy"
)

// holdConns takes n connections of the pool at once, runs a query on each,
// and gives them back: with fewer idle, the pool opens new ones.
func holdConns(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	ctx := t.Context()
	var conns []*sql.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatalf("connection: %v", err)
		}
		conns = append(conns, c)
		var one int
		if err := c.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("query: %v", err)
		}
	}
}

// Two proxies in front of one server stand for two SQL servers: the pool's
// connections go through both in turn; once one is cut, new connections go
// through the other only, and queries go on; with both cut, opening fails
// naming both.
func TestSeveralServers(t *testing.T) {
	cfg := server()
	up := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	var px []*faultproxy.Proxy
	for range 2 {
		p, err := faultproxy.Start(up)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		px = append(px, p)
		cfg.Addrs = append(cfg.Addrs, p.Addr())
	}
	cfg.Start = 1
	tg, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	holdConns(t, tg.DB(), 6)
	opened := tg.Opened()
	a, b := opened[px[0].Addr()], opened[px[1].Addr()]
	if a < 2 || b < 2 || a-b > 1 || b-a > 1 {
		t.Fatalf("connections opened %v: want them spread over both", opened)
	}
	// On TiDB, Open opens the pool twice: the first one's connection
	// went through a proxy too.
	if px[0].Accepted() < a || px[1].Accepted() < b {
		t.Fatalf("proxies passed %d and %d connections, the pool says %v", px[0].Accepted(), px[1].Accepted(), opened)
	}

	px[0].Block()
	// The idle connections through the cut proxy are dead: each is found so
	// on use, dropped, and replaced by one through the other proxy.
	holdConns(t, tg.DB(), 10)
	after := tg.Opened()
	if after[px[0].Addr()] != a {
		t.Errorf("connections opened through the cut proxy after the cut: %v, before %v", after, opened)
	}
	if after[px[1].Addr()] <= b {
		t.Errorf("no new connection through the live proxy: %v", after)
	}

	px[1].Block()
	cfg.RetryFor = 0
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), px[0].Addr()) || !strings.Contains(err.Error(), px[1].Addr()) {
		t.Errorf("open with both servers cut: %v, want an error naming both", err)
	}
}

func TestStartFor(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 7} {
		seen := map[int]bool{}
		for i := range 50 {
			s := StartFor("node-"+strconv.Itoa(i), n)
			if s < 0 || (n > 0 && s >= n) || (n <= 1 && s != 0) {
				t.Fatalf("StartFor(node-%d, %d) = %d", i, n, s)
			}
			seen[s] = true
		}
		// Fifty nodes begin on every server.
		if n > 1 && len(seen) != n {
			t.Errorf("%d servers: 50 nodes begin on %d of them", n, len(seen))
		}
	}
}

// Only a refused user, password or database stops the search for another
// server: every server of the set would refuse it alike. A server that is
// full or shutting down, or that does not answer, is passed over.
func TestRefusedLogin(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{&mysql.MySQLError{Number: 1045, Message: "Access denied for user"}, true},
		{fmt.Errorf("connect: %w", &mysql.MySQLError{Number: 1044}), true},
		{&mysql.MySQLError{Number: 1049, Message: "Unknown database"}, true},
		{&mysql.MySQLError{Number: 1040, Message: "Too many connections"}, false},
		{&mysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"}, false},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, false},
	}
	for _, c := range cases {
		if got := refusedLogin(c.err); got != c.want {
			t.Errorf("refusedLogin(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
