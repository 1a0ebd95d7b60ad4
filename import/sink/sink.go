// Package sink writes rows into a MySQL-compatible target over SQL, one
// database transaction per batch, each fenced by the shard's checkpoint row
// so that a shard taken over by another node can never be written twice.
package sink

import (
	"context"
	"crypto/tls"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MetaDB holds storm's own tables in the target.
const MetaDB = "storm_meta"

// Config says how to reach the target and how to write.
type Config struct {
	Host string
	Port int
	// Addrs are several SQL servers (host:port) to spread connections over
	// (import/sink/hosts.go), beginning with Addrs[Start]; empty: Host:Port.
	Addrs    []string
	Start    int
	User     string
	Password string
	TimeZone string // session time_zone, so TIMESTAMP values mean the same on every node
	// TLSMode is MySQL's ssl-mode: disabled, preferred ("" too), required
	// or verify-identity (import/sink/tls.go).
	TLSMode string
	// TLS holds the CA (RootCAs) and client certificate to use, if any.
	TLS *tls.Config
	// tlsName is the go-sql-driver name TLS is registered under, by Open.
	tlsName string
	// tidb: Open found a TiDB server; its sessions get tidbSession.
	tidb bool

	OnDuplicate string // error | replace | ignore
	// MaxErrors is how many refused rows the job tolerates (recorded in
	// storm_meta.rejected) before a refused row fails its shard.
	MaxErrors  int64
	Mode       string // auto | load | insert
	BatchBytes int    // rows per transaction, by encoded size

	// RetryFor bounds how long a batch is retried on transient errors
	// (connection lost, deadlock, server restarting); default one minute.
	RetryFor time.Duration
	MaxConns int
}

// Target is an open target database.
type Target struct {
	db       *sql.DB
	servers  []*sqlServer // with several SQL servers: Opened
	cfg      Config
	version  string
	loadData bool
	retries  atomic.Int64 // statements retried after a transient error

	// colMu guards cols: each table's columns, read once (the node's
	// workers and the writers' INSERT path ask for them per shard).
	colMu sync.Mutex
	cols  map[string][]Column
}

// Retries counts statements retried after a transient error.
func (t *Target) Retries() int64 { return t.retries.Load() }

// DSN builds the driver's DSN. Strict mode makes a value the column can't
// hold an error instead of a silent truncation; clientFoundRows makes the
// fence UPDATE report matched rows, not changed ones.
func (c Config) DSN() string {
	mc := mysql.NewConfig()
	mc.User, mc.Passwd = c.User, c.Password
	mc.Net, mc.Addr = "tcp", net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	mc.ClientFoundRows = true
	mc.InterpolateParams = true
	mc.AllowNativePasswords = true
	mc.MaxAllowedPacket = 0 // ask the server
	mc.Timeout = 10 * time.Second
	mc.ReadTimeout = 10 * time.Minute
	mc.WriteTimeout = 10 * time.Minute
	c.setTLS(mc) // import/sink/tls.go
	tz := c.TimeZone
	if tz == "" {
		tz = "+00:00"
	}
	mc.Params = map[string]string{
		"charset":            "utf8mb4",
		"sql_mode":           "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO'",
		"time_zone":          "'" + tz + "'",
		"foreign_key_checks": "0",
	}
	if c.tidb {
		for k, v := range tidbSession {
			mc.Params[k] = v
		}
	}
	return mc.FormatDSN()
}

// tidbSession are the session variables of a TiDB target. A dump holds the
// values of AUTO_RANDOM columns, and TiDB refuses explicit values for them
// unless told to take them.
var tidbSession = map[string]string{
	"allow_auto_random_explicit_insert": "1",
}

// Addr names the target in errors; it never carries the password.
func (c Config) Addr() string {
	if len(c.Addrs) > 1 {
		return fmt.Sprintf("%s@{%s}", c.User, strings.Join(c.Addrs, ","))
	}
	return fmt.Sprintf("%s@%s:%d", c.User, c.Host, c.Port)
}

// addrs are the SQL servers in this node's order, from Addrs[Start] on.
func (c Config) addrs() []string {
	if len(c.Addrs) == 0 {
		return []string{net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
	}
	out := make([]string, len(c.Addrs))
	for i := range c.Addrs {
		out[i] = c.Addrs[(c.Start+i)%len(c.Addrs)]
	}
	return out
}

// Open connects and decides between LOAD DATA and INSERT.
func Open(ctx context.Context, cfg Config) (*Target, error) {
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = time.Minute
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 4 << 20
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 64
	}
	db, servers, err := cfg.open(ctx)
	if err != nil {
		return nil, err
	}
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		db.Close()
		return nil, fmt.Errorf("target %s: %w", cfg.Addr(), err)
	}
	if strings.Contains(version, "TiDB") {
		// Session variables go in the DSN, so every pooled connection has
		// them: open the pool again with TiDB's.
		db.Close()
		cfg.tidb = true
		if db, servers, err = cfg.open(ctx); err != nil {
			return nil, err
		}
	}
	t := &Target{db: db, servers: servers, cfg: cfg, version: version}
	switch cfg.Mode {
	case "load":
		t.loadData = true
	case "insert":
	default:
		var on bool
		if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.local_infile").Scan(&on); err == nil {
			t.loadData = on
		}
	}
	return t, nil
}

// open opens and pings the pool; with several SQL servers, its connections
// are spread over them (servers, import/sink/hosts.go).
func (c Config) open(ctx context.Context) (*sql.DB, []*sqlServer, error) {
	var servers []*sqlServer
	for _, addr := range c.addrs() {
		conn, err := c.connector(addr)
		if err != nil {
			return nil, nil, fmt.Errorf("target %s: %w", c.Addr(), err)
		}
		servers = append(servers, &sqlServer{addr: addr, conn: conn})
	}
	var db *sql.DB
	if len(servers) == 1 {
		db, servers = sql.OpenDB(servers[0].conn), nil
	} else {
		db = sql.OpenDB(&hostConnector{servers: servers, drv: &mysql.MySQLDriver{}})
	}
	db.SetMaxOpenConns(c.MaxConns)
	db.SetMaxIdleConns(c.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("target %s: %w%s", c.Addr(), err, c.tlsHint(err))
	}
	return db, servers, nil
}

// connector reaches one SQL server; with verify-identity, the certificate
// must name that server's host.
func (c Config) connector(addr string) (driver.Connector, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if c.Port, err = strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("%s: bad port", addr)
	}
	c.Host = host
	release, err := c.registerTLS() // import/sink/tls.go
	if err != nil {
		return nil, err
	}
	mc, err := mysql.ParseDSN(c.DSN())
	release() // the parsed config holds a copy
	if err != nil {
		return nil, err
	}
	return mysql.NewConnector(mc)
}

// IsTiDB says whether the target is a TiDB server.
func (t *Target) IsTiDB() bool { return t.cfg.tidb }

// Version is what the server's VERSION() said.
func (t *Target) Version() string { return t.version }

// DB is the pool, for schema work and verification.
func (t *Target) DB() *sql.DB { return t.db }

// UsesLoadData says whether batches go in with LOAD DATA LOCAL INFILE.
func (t *Target) UsesLoadData() bool { return t.loadData }

// Close closes the pool.
func (t *Target) Close() error { return t.db.Close() }

// EnsureMeta creates storm's checkpoint table if it is missing.
func (t *Target) EnsureMeta(ctx context.Context) error {
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS " + MetaDB,
		`CREATE TABLE IF NOT EXISTS ` + MetaDB + `.checkpoints (
			job          VARCHAR(128) NOT NULL,
			shard        VARCHAR(512) NOT NULL,
			epoch        BIGINT NOT NULL,
			next_offset  BIGINT NOT NULL DEFAULT 0,
			next_line    BIGINT NOT NULL DEFAULT 1,
			rows_done    BIGINT NOT NULL DEFAULT 0,
			digest_count BIGINT NOT NULL DEFAULT 0,
			digest_xor   BIGINT UNSIGNED NOT NULL DEFAULT 0,
			finished     TINYINT NOT NULL DEFAULT 0,
			updated_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
			PRIMARY KEY (job, shard)
		) DEFAULT CHARSET = utf8mb4`,
		`CREATE TABLE IF NOT EXISTS ` + MetaDB + `.rejected (
			id     BIGINT AUTO_INCREMENT PRIMARY KEY,
			job    VARCHAR(128) NOT NULL,
			shard  VARCHAR(512) NOT NULL,
			file   VARCHAR(4096) NOT NULL,
			line   BIGINT NOT NULL,
			tbl    VARCHAR(255) NOT NULL,
			col    VARCHAR(255) NOT NULL DEFAULT '',
			reason TEXT NOT NULL,
			at     TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
			KEY (job)
		) DEFAULT CHARSET = utf8mb4`,
	} {
		if _, err := t.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("target %s: %w", t.cfg.Addr(), err)
		}
	}
	return nil
}

// TableRef names a target table.
type TableRef struct{ DB, Name string }

func (r TableRef) String() string { return r.DB + "." + r.Name }

// Quoted is the table's name as SQL.
func (r TableRef) Quoted() string { return QuoteIdent(r.DB) + "." + QuoteIdent(r.Name) }

// QuoteIdent quotes a MySQL identifier.
func QuoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// Column is a column of a target table.
type Column struct {
	Name     string
	DataType string // information_schema DATA_TYPE: int, varchar, decimal, ...
	Nullable bool
}

// TableColumns lists a table's columns in order, read from the server once
// per table.
func (t *Target) TableColumns(ctx context.Context, db, table string) ([]Column, error) {
	key := db + "." + table
	t.colMu.Lock()
	defer t.colMu.Unlock()
	if c, ok := t.cols[key]; ok {
		return c, nil
	}
	c, err := t.readColumns(ctx, db, table)
	if err != nil {
		return nil, err
	}
	if t.cols == nil {
		t.cols = map[string][]Column{}
	}
	t.cols[key] = c
	return c, nil
}

func (t *Target) readColumns(ctx context.Context, db, table string) ([]Column, error) {
	rows, err := t.db.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE = 'YES'
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, db, table)
	if err != nil {
		return nil, fmt.Errorf("columns of %s.%s: %w", db, table, err)
	}
	defer rows.Close()
	var cols []Column
	for rows.Next() {
		var c Column
		if err := rows.Scan(&c.Name, &c.DataType, &c.Nullable); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("table %s.%s does not exist in the target", db, table)
	}
	return cols, nil
}
