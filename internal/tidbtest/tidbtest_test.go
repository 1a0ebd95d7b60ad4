//go:build tidb

package tidbtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// What storm's fence relies on, checked on the real TiDB SQL layer: rows
// that LOAD DATA LOCAL streamed inside a transaction go with its rollback,
// and a duplicate is a warning, not an error (as on MariaDB), so the sink's
// warning check sends such a batch to INSERT.
func TestTiDBLoadDataIsTransactional(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := StartT(t, Options{})
	db, err := s.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil || !strings.Contains(version, "TiDB") {
		t.Fatalf("version %q, %v", version, err)
	}
	for _, q := range []string{"CREATE DATABASE tt", "CREATE TABLE tt.x (id INT PRIMARY KEY, v VARCHAR(8))"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(q, err)
		}
	}
	file := filepath.Join(t.TempDir(), "rows.tsv")
	if err := os.WriteFile(file, []byte("1\ta\n2\tb\n3\tc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mysql.RegisterLocalFile(file)
	load := fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE tt.x", file)
	count := func() (n int) {
		t.Helper()
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM tt.x").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, load); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d rows after a rolled-back LOAD DATA", n)
	}

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, wantWarnings := range []int{0, 3} {
		if _, err := conn.ExecContext(ctx, load); err != nil {
			t.Fatalf("load %d: %v", i, err)
		}
		var warnings int
		if err := conn.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&warnings); err != nil {
			t.Fatal(err)
		}
		if warnings != wantWarnings {
			t.Errorf("load %d: %d warnings, want %d", i, warnings, wantWarnings)
		}
	}
	if n := count(); n != 3 {
		t.Errorf("%d rows, want 3", n)
	}
}
