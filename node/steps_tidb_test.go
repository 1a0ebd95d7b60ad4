//go:build tidb

package node

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"storm/import/checksum"
	"storm/import/sink"
	"storm/internal/tidbtest"
	"storm/meta"
)

// On the TiDB test server, what ADMIN SHOW DDL JOBS shows of add-index
// builds: a multi-schema change (several ADD INDEX in one ALTER) that is
// done, or rolled back, is never taken for a running build, whatever its
// sub-jobs' rows say; one held behind an open transaction is found, and
// waited for only so long: blocked, or paused (ADMIN PAUSE DDL JOBS), the
// table fails naming the DDL job; resumed and done, nothing is waited for.
func TestTiDBOtherBuild(t *testing.T) {
	waitBuildBounds(t, 2*time.Second)
	s := tidbtest.StartT(t, tidbtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tg, err := sink.Open(ctx, sink.Config{Host: s.Host, Port: s.Port, User: s.User, Password: s.Password, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if !tg.IsTiDB() {
		t.Fatal("the target is not TiDB")
	}
	log := &logBuffer{}
	n := &Node{target: tg, dcols: map[string][]checksum.Column{}, log: slog.New(slog.NewTextHandler(log, nil))}
	db := tg.DB()
	exec := func(q string) error {
		_, err := db.ExecContext(ctx, q)
		return err
	}
	for _, q := range []string{"CREATE DATABASE ob", "CREATE TABLE ob.t (id INT PRIMARY KEY, a INT, b INT, c VARCHAR(10))",
		"INSERT INTO ob.t VALUES (1, 1, 1, 'x'), (2, 2, 1, 'y')",
		"ALTER TABLE ob.t ADD KEY ka (a), ADD KEY kb (b), ADD KEY kc (c)"} {
		if err := exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	// A multi-schema change that fails (a duplicate for the UNIQUE key)
	// is rolled back.
	if err := exec("ALTER TABLE ob.t ADD KEY ka2 (a), ADD UNIQUE KEY ub (b), ADD KEY kc2 (c)"); err == nil {
		t.Fatal("the ALTER adding a UNIQUE key over duplicates went through")
	}
	// And an ALTER of other clauses with its ADD INDEX, done and rolled
	// back: a sub-job each.
	if err := exec("ALTER TABLE ob.t ADD COLUMN d INT, ADD KEY kd (c), MODIFY COLUMN b BIGINT"); err != nil {
		t.Fatal(err)
	}
	if err := exec("ALTER TABLE ob.t ADD COLUMN e INT, ADD KEY ke (a), ADD UNIQUE KEY ub2 (b)"); err == nil {
		t.Fatal("the ALTER adding a UNIQUE key over duplicates went through")
	}
	st := meta.TableStep{DB: "ob", Table: "t"}
	jobs := func() string {
		rows, err := addIndexJobRows(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	t.Logf("add-index jobs of ob.t:\n%s", jobs())
	if b, err := tidbIndexJob(ctx, db, "ob", "t"); b != nil || err != nil {
		t.Fatalf("finished multi-schema changes taken for a build in progress: %+v, %v\n%s", b, err, jobs())
	}

	// A build held behind an open transaction's metadata lock.
	lock, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	for _, q := range []string{"BEGIN", "SELECT * FROM ob.t"} {
		if _, err := lock.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	alter := make(chan error, 1)
	go func() { alter <- exec("ALTER TABLE `ob`.`t` ADD KEY `kx` (`a`), ADD KEY `ky` (`b`)") }()
	var b *otherBuild
	for b == nil {
		if b, err = tidbIndexJob(ctx, db, "ob", "t"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("held: %+v\n%s", b, jobs())
	if b.paused || b.working {
		t.Fatalf("the held build: %+v", b)
	}
	_, err = n.waitOtherBuild(ctx, st)
	var se *stepError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "DDL job "+b.id) || !strings.Contains(err.Error(), "no progress") {
		t.Fatalf("waiting for the blocked build: %v, want a step failure naming DDL job %s", err, b.id)
	}

	if err := exec("ADMIN PAUSE DDL JOBS " + b.id); err != nil {
		t.Fatal(err)
	}
	for b == nil || !b.paused {
		if b, err = tidbIndexJob(ctx, db, "ob", "t"); err != nil || b == nil {
			t.Fatalf("the paused build: %+v, %v\n%s", b, err, jobs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Its sub-job's row still says "running" under the paused job.
	t.Logf("paused: %+v\n%s", b, jobs())
	_, err = n.waitOtherBuild(ctx, st)
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "paused") || !strings.Contains(err.Error(), "ADMIN RESUME DDL JOBS "+b.id) {
		t.Fatalf("waiting for the paused build: %v, want a step failure naming paused DDL job %s", err, b.id)
	}
	if !strings.Contains(log.b.String(), "is paused") {
		t.Errorf("no warning about the paused job:\n%s", log.b.String())
	}

	// The job goes from pausing to paused once the lock is gone; only a
	// paused job can be resumed.
	if _, err := lock.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(b.name, ", paused)") {
		if b, err = tidbIndexJob(ctx, db, "ob", "t"); err != nil || b == nil {
			t.Fatalf("the paused build: %+v, %v\n%s", b, err, jobs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := exec("ADMIN RESUME DDL JOBS " + b.id); err != nil {
		t.Fatal(err)
	}
	if err := <-alter; err != nil {
		t.Fatalf("the held ALTER after resume: %v", err)
	}
	t.Logf("done:\n%s", jobs())
	if waited, err := n.waitOtherBuild(ctx, st); waited != "" || err != nil {
		t.Fatalf("after the build: waited for %q, %v\n%s", waited, err, jobs())
	}
}

// addIndexJobRows lists ob.t's rows of ADMIN SHOW DDL JOBS, for the log.
func addIndexJobRows(ctx context.Context, tg *sink.Target) (string, error) {
	rows, err := tg.DB().QueryContext(ctx, "ADMIN SHOW DDL JOBS 20 WHERE DB_NAME = 'ob'")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var out []string
	for {
		row, err := nextRow(rows)
		if err != nil || row == nil {
			return strings.Join(out, "\n"), err
		}
		out = append(out, strings.Join([]string{row["JOB_ID"], row["JOB_TYPE"], row["SCHEMA_STATE"], row["ROW_COUNT"], row["STATE"]}, " | "))
	}
}
