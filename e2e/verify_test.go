package e2e

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/internal/gendump"
	"storm/meta"
)

// A successful import is verified by digest on every table; then one row of
// the target is changed, removed or added, the verification is run again,
// and the job fails naming the table, the counts and the digests. The
// default row hash keeps 32 bits; the last cases keep 64.
func TestE2EVerifyCatchesTampering(t *testing.T) {
	cases := []struct {
		name, sql        string
		wantCountsDiffer bool
		bits             string
	}{
		{"changed", "UPDATE `%s`.orders SET amount = amount + 1 WHERE id = (SELECT MIN(id) FROM `%[1]s`.orders)", false, ""},
		{"missing", "DELETE FROM `%s`.orders WHERE id = (SELECT MAX(id) FROM `%[1]s`.orders)", true, ""},
		{"extra", "INSERT INTO `%s`.orders (id, customer_id, amount, ordered_at) VALUES (999999999, 1, 1.5, NOW())", true, ""},
		// Two rows swap customer ids of the same length: the count, the
		// rows' lengths and the column's values stay; an XOR of CRCs would
		// not change (CRC is affine), the digest must.
		{"swapped", "", false, ""},
		{"changed, 64-bit row hash", "UPDATE `%s`.orders SET note = CONCAT(COALESCE(note, ''), 'x') WHERE id = (SELECT MIN(id) FROM `%[1]s`.orders)", false, "64"},
		{"swapped, 64-bit row hash", "", false, "64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, gendump.Options{Rows: 8_000, Format: "mixed", FilesPerTable: 2, Header: true})
			var overrides map[string]string
			if c.bits != "" {
				overrides = map[string]string{"verify.row-hash-bits": c.bits}
			}
			cfg := e.config(overrides)
			n1, n2 := e.node("n1", cfg), e.node("n2", cfg)
			for _, p := range []*proc{n1, n2} {
				if code := p.wait(t, 2*time.Minute); code != 0 {
					t.Fatalf("%s exited %d", p.id, code)
				}
			}
			b := e.barrier()
			if b == nil || b.Status != meta.StatusSucceeded || len(b.Tables) != 4 {
				t.Fatalf("barrier %+v", b)
			}
			if want := map[string]string{"": "sha1-crc32-1", "64": "sha1-concat-ws-1"}[c.bits]; b.RowHash != want {
				t.Errorf("barrier row_hash %q, want %q", b.RowHash, want)
			}
			for _, r := range b.Tables {
				if r.Mode != meta.VerifyDigest || !r.OK || r.ExpectedDigest != r.ActualDigest || r.ExpectedDigest == "" {
					t.Errorf("table result %+v: want a matching digest", r)
				}
				// A 32-bit row hash leaves the digest's high half zero; the
				// XOR of thousands of 64-bit ones does not.
				if high := strings.HasPrefix(r.ExpectedDigest, "00000000"); high != (c.bits == "") {
					t.Errorf("table %s digest %s with row-hash-bits %q", r.Table, r.ExpectedDigest, c.bits)
				}
			}
			if e.count(meta.KindVerifyDone) < 4 {
				t.Errorf("%d verify ranges done, want one per table at least", e.count(meta.KindVerifyDone))
			}
			e.checkTarget()

			if c.sql != "" {
				mustExec(t, e.db(), fmt.Sprintf(c.sql, e.gen.DB))
			} else {
				swapCustomers(t, e.db(), e.gen.DB)
			}
			e.reverify()
			if code := e.node("n3", cfg).wait(t, time.Minute); code != 1 {
				t.Fatalf("re-verification exited %d, want 1", code)
			}
			b = e.barrier()
			if b == nil || b.Status != meta.StatusFailed || !strings.Contains(b.Reason, e.gen.DB+".orders") {
				t.Fatalf("barrier %+v: want failed, naming %s.orders", b, e.gen.DB)
			}
			for _, r := range b.Tables {
				if r.Table != "orders" {
					if !r.OK {
						t.Errorf("untouched table %s failed: %+v", r.Table, r)
					}
					continue
				}
				if r.OK || r.ExpectedDigest == r.ActualDigest || (r.Expected != r.Actual) != c.wantCountsDiffer {
					t.Errorf("orders result %+v", r)
				}
			}
		})
	}
}

// swapCustomers swaps the customer ids of two orders whose ids differ and
// are of the same length, and checks that the column holds the same values.
func swapCustomers(t *testing.T, db *sql.DB, schema string) {
	t.Helper()
	values := func() string {
		var s string
		if err := db.QueryRow("SELECT GROUP_CONCAT(customer_id ORDER BY customer_id) FROM `" + schema + "`.orders").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := values()
	var a, b, ca, cb int64
	if err := db.QueryRow("SELECT x.id, y.id, x.customer_id, y.customer_id FROM `"+schema+"`.orders x JOIN `"+schema+
		"`.orders y ON y.id > x.id AND x.customer_id <> y.customer_id AND LENGTH(x.customer_id) = LENGTH(y.customer_id) "+
		"ORDER BY x.id, y.id LIMIT 1").Scan(&a, &b, &ca, &cb); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, fmt.Sprintf("UPDATE `%s`.orders SET customer_id = %d WHERE id = %d", schema, cb, a))
	mustExec(t, db, fmt.Sprintf("UPDATE `%s`.orders SET customer_id = %d WHERE id = %d", schema, ca, b))
	if after := values(); after != before {
		t.Fatalf("the swap changed the column's values")
	}
}

// reverify removes the verify and finalize results so that the next node
// to join runs them again over the target as it is now.
func (e *env) reverify() {
	e.t.Helper()
	ctx := e.t.Context()
	ops := []clientv3.Op{
		clientv3.OpDelete(e.job.Barrier()),
		clientv3.OpDelete(e.job.PhaseMarker(meta.PhaseVerifyPlan)),
		clientv3.OpDelete(e.job.PhaseMarker(meta.PhaseVerify)),
		clientv3.OpDelete(e.job.PhaseMarker(meta.PhaseFinalize)),
	}
	for _, k := range []meta.Kind{meta.KindVerifyRanges, meta.KindVerifyDone, meta.KindVerifyClaims, meta.KindVerifyFailed} {
		ops = append(ops, clientv3.OpDelete(e.job.Dir(k), clientv3.WithPrefix()))
	}
	if _, err := e.etcd.Txn(ctx).Then(ops...).Commit(); err != nil {
		e.t.Fatal(err)
	}
}

// Every verify mode writes the same rows: with off and count the CSV rows
// go to LOAD DATA as the reader encodes them, never decoded into values
// (node/worker.go); with digest they are decoded and hashed. Every byte of
// the generator's values (tabs, newlines, backslashes, NUL, quotes, NULL
// beside "NULL" and "\N") must land the same, compared row by row.
func TestE2EVerifyModesWriteTheSameRows(t *testing.T) {
	for _, mode := range []string{"off", "count", "digest"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, gendump.Options{Rows: 20_000, Format: "mixed", FilesPerTable: 2, Header: true})
			cfg := e.config(map[string]string{"verify.mode": fmt.Sprintf("%q", mode)})
			n1, n2 := e.node("n1", cfg), e.node("n2", cfg)
			for _, p := range []*proc{n1, n2} {
				if code := p.wait(t, 2*time.Minute); code != 0 {
					t.Fatalf("%s exited %d", p.id, code)
				}
			}
			b := e.barrier()
			if b == nil || b.Status != meta.StatusSucceeded {
				t.Fatalf("barrier %+v", b)
			}
			for _, r := range b.Tables {
				if r.Mode != mode {
					t.Errorf("%s.%s verified by %q, want %q", r.DB, r.Table, r.Mode, mode)
				}
			}
			e.checkTarget()
		})
	}
}
