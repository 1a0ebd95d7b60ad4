package checksum

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"storm/internal/mariadbtest"
)

// genCol is a column of the property test table and a generator of
// source-style text for it: the spellings a dump file may hold, not the
// server's.
type genCol struct {
	name, def string
	gen       func(r *rand.Rand) string
	notNull   bool   // never NULL (and declared NOT NULL)
	place     string // the value's placeholder in INSERT, "?" if empty
}

var propertyCols = []genCol{
	{name: "ti", def: "tinyint", gen: func(r *rand.Rand) string { return spellInt(r, r.Int64N(256)-128) }},
	{name: "su", def: "smallint unsigned", gen: func(r *rand.Rand) string { return spellInt(r, r.Int64N(65536)) }},
	{name: "i", def: "int", gen: func(r *rand.Rand) string { return spellInt(r, r.Int64N(1<<32)-1<<31) }},
	{name: "bu", def: "bigint unsigned", gen: genBigUnsigned},
	{name: "d144", def: "decimal(14,4)", gen: genDecimal144},
	{name: "d50", def: "decimal(5,0)", gen: genDecimal50},
	{name: "f", def: "float", gen: genFloat},
	{name: "g", def: "double", gen: genDouble},
	{name: "dd", def: "date", gen: func(r *rand.Rand) string { return genDateTime(r, 0, false) }},
	{name: "dt", def: "datetime", gen: func(r *rand.Rand) string { return genDateTime(r, 1, false) }},
	{name: "dt6", def: "datetime(6)", gen: func(r *rand.Rand) string { return genDateTime(r, 6, false) }},
	{name: "ts3", def: "timestamp(3) NULL", gen: func(r *rand.Rand) string { return genDateTime(r, 3, true) }},
	{name: "tm", def: "time", gen: func(r *rand.Rand) string { return genTime(r, 0) }},
	{name: "tm2", def: "time(2)", gen: func(r *rand.Rand) string { return genTime(r, 2) }},
	{name: "y", def: "year", gen: genYear},
	{name: "c8", def: "char(8)", gen: func(r *rand.Rand) string { return genChars(r, 8) }},
	{name: "vc", def: "varchar(40)", gen: func(r *rand.Rand) string { return genChars(r, 40) }},
	{name: "tx", def: "text", gen: func(r *rand.Rand) string { return genChars(r, 200) }},
	{name: "b6", def: "binary(6)", gen: func(r *rand.Rand) string { return genBytes(r, 6) }},
	{name: "vb", def: "varbinary(20)", gen: func(r *rand.Rand) string { return genBytes(r, 20) }},
	{name: "bl", def: "blob", gen: func(r *rand.Rand) string { return genBytes(r, 300) }},
	{name: "bt", def: "bit(10)", gen: genBit},
	{name: "e", def: `enum('red','green','blue','it''s','back\\slash','1','3') COLLATE utf8mb4_general_ci`, gen: genEnum},
	{name: "s", def: "set('a','b','c','d','e') COLLATE utf8mb4_general_ci", gen: genSet},
	{name: "j", def: "json", gen: genJSON},
	// Added for the server's side of the hash: other character sets and
	// collations (converted to utf8mb4, as the connection does), a full
	// 64-bit BIT, a NOT NULL column (no IFNULL on the server).
	{name: "l1", def: "varchar(30) CHARACTER SET latin1", gen: func(r *rand.Rand) string { return genFrom(r, latin1Alphabet, 30) },
		place: "CONVERT(? USING utf8mb4)"}, // a _binary'...' string goes into latin1 byte for byte
	{name: "u3", def: "varchar(30) CHARACTER SET utf8mb3", gen: func(r *rand.Rand) string { return genFrom(r, alphabet[:len(alphabet)-1], 30) },
		place: "CONVERT(? USING utf8mb4)"},
	{name: "uc", def: "varchar(30) COLLATE utf8mb4_unicode_ci", gen: func(r *rand.Rand) string { return genChars(r, 30) }},
	{name: "b64", def: "bit(64)", gen: genBit64},
	{name: "nn", def: "int NOT NULL", gen: func(r *rand.Rand) string { return spellInt(r, r.Int64N(1<<32)-1<<31) }, notNull: true},
}

const propertyRows = 2000

// TestCanonicalMariaDB checks the normalisation against a real MariaDB.
func TestCanonicalMariaDB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := mariadbtest.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	tg := propertyTarget{dsn: createCK(ctx, t, srv), cols: propertyCols, unclaimed: map[string]bool{"f": true, "g": true}}
	for _, rh := range RowHashes {
		t.Run("property/"+rh.Name(), func(t *testing.T) { testProperty(ctx, t, tg, rh) })
	}
	t.Run("round-fraction", func(t *testing.T) { testRoundFraction(ctx, t, srv) })
	t.Run("bit-xor-precision", func(t *testing.T) { testBitXORPrecision(ctx, t, tg.dsn) })
}

// createCK creates the property tests' database ck on a test server and
// returns its DSN.
func createCK(ctx context.Context, t *testing.T, srv interface {
	Open(db string) (*sql.DB, error)
	DSN(db string) string
}) string {
	t.Helper()
	admin, err := srv.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE ck"); err != nil {
		t.Fatal(err)
	}
	return srv.DSN("ck")
}

// propertyTarget is the server the property test runs on.
type propertyTarget struct {
	dsn  string // of the database ck
	tidb bool
	cols []genCol // the property table's columns after id
	// unclaimed are the property table's columns RowHashSQL must route to
	// the read-back: on MariaDB the floats, which it prints its own way.
	unclaimed map[string]bool
}

// testBitXORPrecision: the server's BIT_XOR of row hashes at and above 2^63
// is exact, and reaches the Go side as the same uint64.
func testBitXORPrecision(ctx context.Context, t *testing.T, dsn string) {
	db := openPool(t, dsn, true)
	cases := [][]string{
		{"ffffffffffffffff"},
		{"8000000000000000"},
		{"fedcba9876543210", "8000000000000001"},
		{"ffffffffffffffff", "7fffffffffffffff", "8000000000000000", "0123456789abcdef"},
		{"8000000000000001", "8000000000000002", "8000000000000004"},
	}
	for _, hexes := range cases {
		var parts []string
		var want uint64
		for _, h := range hexes {
			// The row hash expression's tail, on a literal digest.
			parts = append(parts, "SELECT CAST(CONV(LEFT('"+h+"0123456789abcdef0123',16),16,10) AS UNSIGNED) x")
			v, err := strconv.ParseUint(h, 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			want ^= v
		}
		var got uint64
		var n int64
		q := "SELECT COUNT(*), BIT_XOR(x) FROM (" + strings.Join(parts, " UNION ALL ") + ") q"
		if err := db.QueryRowContext(ctx, q).Scan(&n, &got); err != nil {
			t.Fatal(err)
		}
		if got != want || n != int64(len(hexes)) {
			t.Errorf("BIT_XOR of %v: %016x (%d rows), want %016x", hexes, got, n, want)
		}
	}
	// And of real row hashes: each row hash of a row string, computed by
	// both.
	for _, rh := range RowHashes {
		var got uint64
		if err := db.QueryRowContext(ctx, "SELECT BIT_XOR("+rh.sql("CONCAT_WS(',','7','1:x')")+")").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := rowHash(rh, []byte("7,1:x")); got != want {
			t.Errorf("%s of \"7,1:x\": server %016x, Go %016x", rh, got, want)
		}
	}
}

// testProperty: rows written as source text and read back over the text
// protocol hash the same, and the table digest notices changed, missing and
// extra rows.
func testProperty(ctx context.Context, t *testing.T, tg propertyTarget, rh RowHash) {
	// Two pools as the sink's: values interpolated as _binary'...' (the
	// sink's way) and sent as string parameters of prepared statements.
	interp, prep := openPool(t, tg.dsn, true), openPool(t, tg.dsn, false)

	defs := []string{"id int PRIMARY KEY"}
	names := []string{"id"}
	for _, c := range tg.cols {
		defs = append(defs, "`"+c.name+"` "+c.def)
		names = append(names, "`"+c.name+"`")
	}
	if _, err := prep.ExecContext(ctx, "DROP TABLE IF EXISTS t"); err != nil {
		t.Fatal(err)
	}
	if _, err := prep.ExecContext(ctx, "CREATE TABLE t ("+strings.Join(defs, ", ")+")"); err != nil {
		t.Fatal(err)
	}

	r := rand.New(rand.NewPCG(20240305, 7))
	src := make([][]Field, propertyRows)
	for i := range src {
		row := []Field{text(strconv.Itoa(i + 1))}
		for _, c := range tg.cols {
			if r.IntN(10) == 0 && !c.notNull {
				row = append(row, nullField)
			} else {
				row = append(row, text(c.gen(r)))
			}
		}
		src[i] = row
	}
	insert := func(db *sql.DB, rows [][]Field) error {
		places := []string{"?"}
		for _, c := range tg.cols {
			places = append(places, cmp.Or(c.place, "?"))
		}
		tuple := "(" + strings.Join(places, ",") + ")"
		q := "INSERT INTO t (" + strings.Join(names, ",") + ") VALUES " +
			strings.TrimSuffix(strings.Repeat(tuple+",", len(rows)), ",")
		var args []any
		for _, row := range rows {
			for _, f := range row {
				if f.Null {
					args = append(args, nil)
				} else {
					args = append(args, f.Data)
				}
			}
		}
		_, err := db.ExecContext(ctx, q, args...)
		return err
	}
	const batch = 100
	for i := 0; i < len(src); i += batch {
		db := interp
		if i/batch%2 == 1 {
			db = prep
		}
		rows := src[i:min(i+batch, len(src))]
		if err := insert(db, rows); err != nil {
			// Find the row: the statement was atomic, so go row by row.
			for _, row := range rows {
				if err := insert(db, [][]Field{row}); err != nil {
					t.Fatalf("the server refuses generated row %s: %v\n%s", row[0].Data, err, showRow(tg.cols, row))
				}
			}
			t.Fatalf("batch at %d: %v", i, err)
		}
	}

	cols := readColumns(t, prep, "t")
	if len(cols) != len(names) {
		t.Fatalf("%d columns read, %d created", len(cols), len(names))
	}
	for _, c := range cols {
		if c.TruncFraction == tg.tidb {
			t.Errorf("column %s: TruncFraction %v: MariaDB with its default sql_mode truncates fractional seconds, TiDB rounds", c.Name, c.TruncFraction)
		}
	}
	for _, c := range cols {
		switch c.Name {
		case "d144":
			if c.Scale != 4 {
				t.Errorf("decimal(14,4) scale %d", c.Scale)
			}
		case "dt6":
			if c.Scale != 6 {
				t.Errorf("datetime(6) scale %d", c.Scale)
			}
		case "ts3":
			if c.Scale != 3 {
				t.Errorf("timestamp(3) scale %d", c.Scale)
			}
		}
	}

	srcHasher := NewRowHasher(rh, cols)
	var want Digest
	for _, row := range src {
		x, err := srcHasher.Hash(row)
		if err != nil {
			t.Fatalf("source row %s: %v", row[0].Data, err)
		}
		want.Add(x)
	}

	got, back := readTable(t, prep, rh, cols, "SELECT "+strings.Join(names, ",")+" FROM t ORDER BY id")
	if len(back) != len(src) {
		t.Fatalf("read %d rows, wrote %d", len(back), len(src))
	}
	tgtHasher := NewRowHasher(rh, cols)
	bad := 0
	for i := range src {
		hs, _ := srcHasher.Hash(src[i])
		ht, err := tgtHasher.Hash(back[i])
		if err != nil {
			t.Errorf("row %d as read back: %v", i+1, err)
			bad++
			continue
		}
		if hs == ht {
			continue
		}
		bad++
		if bad > 20 {
			continue
		}
		for k, c := range cols {
			a, errA := Canonical(nil, c, src[i][k])
			b, errB := Canonical(nil, c, back[i][k])
			if !bytes.Equal(a, b) || errA != nil || errB != nil {
				t.Errorf("row %d column %s %s: source %s -> %s (%v), server %s -> %s (%v)", i+1, c.Name, c.ColumnType,
					show(src[i][k]), showCanon(a), errA, show(back[i][k]), showCanon(b), errB)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d rows hash differently from the source and from the server", bad, len(src))
	}
	if got != want {
		t.Fatalf("table digest %+v, source digest %+v", got, want)
	}

	// The server's side: every column RowHashSQL claims hashes on the
	// server as the source text does here; the others are routed to the
	// read-back, and for good reason.
	claimed := testServerColumns(ctx, t, prep, tg, rh, cols, src)
	var claimedCols []Column
	var claimedIdx []int
	for i, c := range cols {
		if claimed[c.Name] {
			claimedCols, claimedIdx = append(claimedCols, c), append(claimedIdx, i)
		}
	}
	serverExpr, err := RowHashSQL(rh, claimedCols)
	if err != nil {
		t.Fatal(err)
	}
	var ue *UnsupportedError
	if _, err := RowHashSQL(rh, cols); !errors.As(err, &ue) || claimed[ue.Column] {
		t.Errorf("the whole table has unclaimed columns; RowHashSQL says %v", err)
	}
	project := func(row []Field) []Field {
		out := make([]Field, len(claimedIdx))
		for k, i := range claimedIdx {
			out[k] = row[i]
		}
		return out
	}
	claimedHasher := NewRowHasher(rh, claimedCols)
	sourceDigest := func(skip int) Digest {
		var d Digest
		for i, row := range src {
			if i == skip {
				continue
			}
			x, err := claimedHasher.Hash(project(row))
			if err != nil {
				t.Fatalf("source row %s: %v", row[0].Data, err)
			}
			d.Add(x)
		}
		return d
	}
	wantServer := sourceDigest(-1)
	if rh == RowHash64 && wantServer.XOR < 1<<63 {
		t.Logf("(the digest is below 2^63; the precision check below covers the high bit)")
	}
	serverDigest := func() Digest {
		t.Helper()
		var d Digest
		if err := prep.QueryRowContext(ctx, "SELECT COUNT(*), BIT_XOR("+serverExpr+") FROM t").Scan(&d.Count, &d.XOR); err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := serverDigest(); d != wantServer {
		t.Fatalf("server digest of the claimed columns %+v, source digest %+v", d, wantServer)
	}

	// The digest notices one changed value, a missing row and an extra row.
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := prep.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	digest := func() Digest {
		t.Helper()
		d, _ := readTable(t, prep, rh, cols, "SELECT "+strings.Join(names, ",")+" FROM t")
		return d
	}
	k := 1 + r.IntN(propertyRows)
	exec("UPDATE t SET d144 = COALESCE(d144, 0) + 0.0001 WHERE id = ?", k)
	if d := digest(); d == want || d.XOR == want.XOR {
		t.Errorf("decimal of row %d changed by 0.0001: the digest %+v did not change", k, d)
	}
	if d := serverDigest(); d == wantServer || d.XOR == wantServer.XOR {
		t.Errorf("decimal of row %d changed by 0.0001: the server digest %+v did not change", k, d)
	}
	exec("UPDATE t SET d144 = ? WHERE id = ?", arg(src[k-1][colIndex(tg.cols, "d144")]), k)
	if d := digest(); d != want {
		t.Errorf("after restoring row %d: %+v, want %+v", k, d, want)
	}
	if d := serverDigest(); d != wantServer {
		t.Errorf("after restoring row %d: server %+v, want %+v", k, d, wantServer)
	}

	// Two rows swap values of equal length: the row strings keep their
	// lengths and the column keeps its values, which an XOR of CRCs (affine)
	// would not see. Both digests must.
	var a, b int
	if err := prep.QueryRowContext(ctx, `SELECT x.id, y.id FROM t x JOIN t y ON y.id > x.id
		AND LENGTH(x.vc) = LENGTH(y.vc) AND x.vc <> y.vc ORDER BY x.id, y.id LIMIT 1`).Scan(&a, &b); err != nil {
		t.Fatal(err)
	}
	va, vb := arg(src[a-1][colIndex(tg.cols, "vc")]), arg(src[b-1][colIndex(tg.cols, "vc")])
	exec("UPDATE t SET vc = ? WHERE id = ?", vb, a)
	exec("UPDATE t SET vc = ? WHERE id = ?", va, b)
	if d := digest(); d.Count != want.Count || d.XOR == want.XOR {
		t.Errorf("rows %d and %d swapped vc: read-back digest %+v, source %+v", a, b, d, want)
	}
	if d := serverDigest(); d.Count != wantServer.Count || d.XOR == wantServer.XOR {
		t.Errorf("rows %d and %d swapped vc: server digest %+v, source %+v", a, b, d, wantServer)
	}
	exec("UPDATE t SET vc = ? WHERE id = ?", va, a)
	exec("UPDATE t SET vc = ? WHERE id = ?", vb, b)
	if d := serverDigest(); d != wantServer {
		t.Errorf("after swapping back: server %+v, want %+v", d, wantServer)
	}
	k = 1 + r.IntN(propertyRows)
	for c8 := src[k-1][colIndex(tg.cols, "c8")]; c8.Null || len([]rune(string(c8.Data))) >= 8; c8 = src[k-1][colIndex(tg.cols, "c8")] {
		k = k%propertyRows + 1
	}
	exec("UPDATE t SET c8 = CONCAT(COALESCE(c8, ''), ' ') WHERE id = ?", k)
	if d := digest(); d != want {
		t.Errorf("a trailing space in CHAR is not stored, yet the digest changed: %+v, want %+v", d, want)
	}
	exec("DELETE FROM t WHERE id = ?", k)
	withoutK := Digest{}
	for i, row := range src {
		if i != k-1 {
			x, _ := srcHasher.Hash(row)
			withoutK.Add(x)
		}
	}
	if d := digest(); d == want || d.XOR == want.XOR || d != withoutK {
		t.Errorf("row %d missing: digest %+v, source %+v, source without it %+v", k, d, want, withoutK)
	}
	if d := serverDigest(); d.XOR == wantServer.XOR || d != sourceDigest(k-1) {
		t.Errorf("row %d missing: server digest %+v, source %+v, source without it %+v", k, d, wantServer, sourceDigest(k-1))
	}
	if err := insert(prep, [][]Field{src[k-1]}); err != nil {
		t.Fatal(err)
	}
	if d := digest(); d != want {
		t.Errorf("row %d back: %+v, want %+v", k, d, want)
	}
	extra := append([]Field{text(strconv.Itoa(propertyRows + 1))}, src[k-1][1:]...)
	if err := insert(prep, [][]Field{extra}); err != nil {
		t.Fatal(err)
	}
	if d := digest(); d == want || d.XOR == want.XOR {
		t.Errorf("an extra row: the digest %+v did not change", d)
	}
	if d := serverDigest(); d.Count != wantServer.Count+1 || d.XOR == wantServer.XOR {
		t.Errorf("an extra row: the server digest %+v, source %+v", d, wantServer)
	}
}

// testServerColumns checks, column by column, that the server's row hash
// of each column RowHashSQL claims equals the hash of the source text, and
// that the columns it does not claim are the expected ones and would indeed
// differ. It returns the claimed columns' names.
func testServerColumns(ctx context.Context, t *testing.T, db *sql.DB, tg propertyTarget, rh RowHash, cols []Column, src [][]Field) map[string]bool {
	t.Helper()
	claimed := map[string]bool{}
	for k, c := range cols {
		expr, err := RowHashSQL(rh, []Column{c})
		var ue *UnsupportedError
		switch {
		case err == nil && tg.unclaimed[c.Name]:
			t.Errorf("column %s %s: claimed for the server, expected to be read back", c.Name, c.ColumnType)
		case err != nil && !tg.unclaimed[c.Name]:
			t.Errorf("column %s %s: not claimed for the server: %v", c.Name, c.ColumnType, err)
			continue
		case err != nil && (!errors.As(err, &ue) || ue.Column != c.Name):
			t.Errorf("column %s: %v, want an *UnsupportedError naming it", c.Name, err)
			continue
		}
		if err != nil {
			// Routed to the read-back: the server's plain text of the
			// column would not match storm's form for some rows.
			n := countServerMismatches(ctx, t, db, tg, c, k, src, false)
			if n == 0 {
				t.Errorf("column %s %s is routed to the read-back, but the server's text matches on every row", c.Name, c.ColumnType)
			}
			t.Logf("column %s %s: read back (%v); its plain server text differs on %d of %d rows", c.Name, c.ColumnType, err, n, len(src))
			continue
		}
		claimed[c.Name] = true
		h := NewRowHasher(rh, []Column{c})
		rows, err := db.QueryContext(ctx, "SELECT id, "+expr+" FROM t ORDER BY id")
		if err != nil {
			t.Fatalf("column %s: %v", c.Name, err)
		}
		bad := 0
		for rows.Next() {
			var id int
			var got uint64
			if err := rows.Scan(&id, &got); err != nil {
				t.Fatal(err)
			}
			wantH, err := h.Hash(src[id-1][k : k+1])
			if err != nil {
				t.Fatalf("row %d column %s: %v", id, c.Name, err)
			}
			if got != wantH {
				bad++
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if bad > 0 {
			countServerMismatches(ctx, t, db, tg, c, k, src, true)
			t.Errorf("column %s %s: the server's hash differs from the source's on %d of %d rows", c.Name, c.ColumnType, bad, len(src))
		}
	}
	return claimed
}

// countServerMismatches compares the server's term of a column with the
// source's Canonical term, row by row; report logs the first few. For a
// column RowHashSQL refuses, the term is what it would be were the column
// claimed: the plain column for a number, its utf8mb4 text framed by its
// length otherwise.
func countServerMismatches(ctx context.Context, t *testing.T, db *sql.DB, tg propertyTarget, c Column, k int, src [][]Field, report bool) int {
	t.Helper()
	term, err := sqlTerm(c)
	if err != nil {
		s := prepare(c)
		term = "`" + c.Name + "`"
		if !s.plain() {
			u := "CONVERT(" + term + " USING utf8mb4)"
			term = "CONCAT(LENGTH(" + u + "),':'," + u + ")"
		}
		term = "IFNULL(" + term + ",'N')"
	}
	rows, err := db.QueryContext(ctx, "SELECT id, CONCAT_WS(',',"+term+") FROM t ORDER BY id")
	if err != nil {
		t.Fatalf("column %s: %v", c.Name, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id int
		var got []byte
		if err := rows.Scan(&id, &got); err != nil {
			t.Fatal(err)
		}
		want, _ := Canonical(nil, c, src[id-1][k])
		if !bytes.Equal(got, want) {
			if n++; report && n <= 10 {
				t.Errorf("row %d column %s: source %s, term %s; the server's %s", id, c.Name, show(src[id-1][k]), showCanon(want), showCanon(got))
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// testRoundFraction checks the rounding rule for fractional seconds
// against MariaDB with TIME_ROUND_FRACTIONAL, MySQL's default behaviour.
func testRoundFraction(ctx context.Context, t *testing.T, srv *mariadbtest.Server) {
	cfg, err := mysql.ParseDSN(srv.DSN("ck"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Params = map[string]string{
		"sql_mode":  "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,TIME_ROUND_FRACTIONAL'",
		"time_zone": "'+00:00'",
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE r (id int PRIMARY KEY, dt datetime, dt6 datetime(6), ts3 timestamp(3) NULL, tm time, tm2 time(2))"); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	fixed := [][]string{
		{"2024-01-01 23:59:59.5", "2024-01-01 23:59:59.9999995", "2024-12-31 23:59:59.9995", "-10:59:59.5", "838:59:58.995"},
		{"2024-02-28 23:59:59.7", "2024-02-28 23:59:59.99999951", "2024-03-05 10:11:12.9999", "00:00:00.5", "-00:00:00.005"},
	}
	var src [][]Field
	for i := 0; i < 500; i++ {
		row := []Field{text(strconv.Itoa(i + 1))}
		if i < len(fixed) {
			for _, v := range fixed[i] {
				row = append(row, text(v))
			}
		} else {
			row = append(row, text(genDateTime(r, 1, false)), text(genDateTime(r, 6, false)), text(genDateTime(r, 3, true)),
				text(genTimeMax(r, 0, 837)), text(genTimeMax(r, 2, 837)))
		}
		args := make([]any, len(row))
		for k, f := range row {
			args[k] = f.Data
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO r VALUES (?,?,?,?,?,?)", args...); err != nil {
			t.Fatalf("row %v: %v", args, err)
		}
		src = append(src, row)
	}
	cols := readColumns(t, db, "r")
	for _, c := range cols {
		if c.TruncFraction {
			t.Fatalf("column %s: the session has TIME_ROUND_FRACTIONAL; ColumnsQuery says it truncates", c.Name)
		}
	}
	_, back := readTable(t, db, RowHash32, cols, "SELECT id, dt, dt6, ts3, tm, tm2 FROM r ORDER BY id")
	bad := 0
	for i := range src {
		for k, c := range cols {
			a, errA := Canonical(nil, c, src[i][k])
			b, errB := Canonical(nil, c, back[i][k])
			if !bytes.Equal(a, b) || errA != nil || errB != nil {
				if bad++; bad <= 20 {
					t.Errorf("row %d column %s: source %s -> %s (%v), server %s -> %s (%v)", i+1, c.ColumnType,
						show(src[i][k]), showCanon(a), errA, show(back[i][k]), showCanon(b), errB)
				}
			}
		}
	}
}

// colIndex is the index of a column of the property table in its rows.
func colIndex(cols []genCol, name string) int {
	for i, c := range cols {
		if c.name == name {
			return i + 1
		}
	}
	panic(name)
}

func openPool(t *testing.T, dsn string, interpolate bool) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.InterpolateParams = interpolate
	cfg.Params = map[string]string{
		"charset":   "utf8mb4",
		"sql_mode":  "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO'",
		"time_zone": "'+00:00'",
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func readColumns(t *testing.T, db *sql.DB, table string) []Column {
	t.Helper()
	rows, err := db.Query(ColumnsQuery, "ck", table)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := ScanColumns(rows)
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

// readTable reads rows over the text protocol (a query without arguments)
// and returns their digest and values.
func readTable(t *testing.T, db *sql.DB, rh RowHash, cols []Column, q string) (Digest, [][]Field) {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	h := NewRowHasher(rh, cols)
	raw := make([]sql.RawBytes, len(cols))
	dest := make([]any, len(cols))
	for i := range raw {
		dest[i] = &raw[i]
	}
	var d Digest
	var out [][]Field
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		row := make([]Field, len(cols))
		for i, v := range raw {
			if v == nil {
				row[i] = nullField
			} else {
				row[i] = Field{Data: bytes.Clone(v)}
			}
		}
		x, err := h.Hash(row)
		if err != nil {
			t.Fatal(err)
		}
		d.Add(x)
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return d, out
}

func arg(f Field) any {
	if f.Null {
		return nil
	}
	return f.Data
}

func show(f Field) string {
	if f.Null {
		return "NULL"
	}
	return strconv.Quote(string(f.Data))
}

// showCanon shows a term of the row string.
func showCanon(b []byte) string { return strconv.Quote(string(b)) }

func showRow(cols []genCol, row []Field) string {
	var b strings.Builder
	for i, f := range row[1:] {
		fmt.Fprintf(&b, "  %s %s: %s\n", cols[i].name, cols[i].def, show(f))
	}
	return b.String()
}

// spellInt writes v the ways a dump may: plain, with leading zeros, a plus
// sign, spaces, a zero fraction, an exponent, or a half that rounds to v.
func spellInt(r *rand.Rand, v int64) string {
	neg := v < 0
	abs := uint64(v)
	if neg {
		abs = uint64(-v)
	}
	return spellUint(r, neg, abs)
}

func spellUint(r *rand.Rand, neg bool, abs uint64) string {
	sign := ""
	if neg {
		sign = "-"
	}
	s := strconv.FormatUint(abs, 10)
	switch r.IntN(8) {
	case 0:
		return sign + "00" + s
	case 1:
		if !neg {
			return "+" + s
		}
	case 2: // leading spaces only: the server refuses trailing ones in a _binary string
		return "  " + sign + s
	case 3:
		return sign + s + ".0"
	case 4:
		if abs%10 == 0 && abs != 0 {
			return sign + strconv.FormatUint(abs/10, 10) + "e1"
		}
		return sign + s + "e0"
	case 5: // rounds half away from zero to v
		if abs == 0 {
			return []string{"0.4", "-0.4", "-0", "+0.49"}[r.IntN(4)]
		}
		return sign + strconv.FormatUint(abs-1, 10) + ".5"
	case 6: // rounds down to v
		return sign + s + ".49"
	}
	return sign + s
}

func genBigUnsigned(r *rand.Rand) string {
	switch r.IntN(10) {
	case 0:
		return spellUint(r, false, math.MaxUint64)
	case 1:
		return spellUint(r, false, 0)
	case 2:
		return spellUint(r, false, r.Uint64N(1000))
	}
	return spellUint(r, false, r.Uint64())
}

// spellDecimal writes sign, integer digits and fraction digits of a decimal
// in a random dump spelling.
func spellDecimal(r *rand.Rand, neg bool, ip, frac string) string {
	sign := ""
	if neg {
		sign = "-"
	}
	switch r.IntN(6) {
	case 0:
		return sign + "0" + ip + "." + frac
	case 1:
		if !neg {
			sign = "+"
		}
	case 2: // exponent
		return sign + strings.TrimLeft(ip+frac, "0") + "0e-" + strconv.Itoa(len(frac)+1)
	case 3:
		if ip == "0" {
			return sign + "." + frac
		}
	case 4:
		return sign + ip + "." + frac + "E0"
	}
	return sign + ip + "." + frac
}

func digits(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	return string(b)
}

func genDecimal144(r *rand.Rand) string {
	switch r.IntN(12) {
	case 0:
		return []string{"-0", "-0.0000", "-0.00001", "-0.00004999", "0", ".5", "5.", "1e3", "-1.5e2", "0.00005"}[r.IntN(10)]
	case 1: // an integer
		return spellInt(r, r.Int64N(2e10-1)-(1e10-1))
	}
	ip := strconv.FormatInt(r.Int64N(1e9), 10)
	if r.IntN(3) == 0 {
		ip = strconv.FormatInt(r.Int64N(100), 10)
	}
	var frac string
	switch r.IntN(3) {
	case 0: // fewer digits than the scale
		frac = digits(r, 1+r.IntN(3))
	case 1:
		frac = digits(r, 4)
	default: // more: rounds
		frac = digits(r, 5+r.IntN(4))
		if r.IntN(4) == 0 {
			frac = "9999" + []string{"5", "49", "50001", "9"}[r.IntN(4)]
		}
	}
	return spellDecimal(r, r.IntN(3) == 0, ip, frac)
}

func genDecimal50(r *rand.Rand) string {
	v := r.Int64N(199999) - 99999
	if r.IntN(3) == 0 {
		return spellInt(r, v)
	}
	neg := v < 0
	if neg {
		v = -v
	}
	// A fraction that rounds back down to v (99999 must not round up).
	frac := "4" + digits(r, r.IntN(3))
	if v < 99999 && r.IntN(2) == 0 {
		v, frac = v-1, "5"+digits(r, r.IntN(3))
		if v < 0 {
			v, frac = 0, "0"
		}
	}
	return spellDecimal(r, neg, strconv.FormatInt(v, 10), frac)
}

func genFloat(r *rand.Rand) string {
	if r.IntN(20) == 0 {
		return []string{"0", "-0", "1", "-1.5", "3.4e38", "-3.4e38", "1e-30", "16777217", "0.1"}[r.IntN(9)]
	}
	m := strconv.FormatInt(1+r.Int64N(999999999), 10)
	e := r.IntN(56) - 30
	sign := ""
	if r.IntN(2) == 0 {
		sign = "-"
	}
	s := sign + m[:1] + "." + m[1:] + "e" + strconv.Itoa(e)
	if e > -8 && e < 12 && r.IntN(2) == 0 {
		v, _ := strconv.ParseFloat(s, 64)
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return s
}

func genDouble(r *rand.Rand) string {
	var v float64
	for {
		v = math.Float64frombits(r.Uint64())
		if !math.IsNaN(v) && !math.IsInf(v, 0) && (v == 0 || math.Abs(math.Log10(math.Abs(v))) < 300) {
			break
		}
	}
	switch r.IntN(6) {
	case 0:
		return strconv.FormatFloat(v, 'e', 20, 64) // more digits than needed
	case 1:
		return strconv.FormatFloat(v, 'E', -1, 64)
	case 2:
		return []string{"0", "-0", "0.1", "0.30000000000000004", "1e100", "-2.5", "123456789012345678"}[r.IntN(7)]
	case 3:
		return strconv.FormatFloat(r.Float64()*1000, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// genDateTime writes a date (frac 0: DATE), or a date and time with frac
// fraction digits at most (datetime(0) gets 1 to check truncation).
func genDateTime(r *rand.Rand, frac int, timestamp bool) string {
	if r.IntN(40) == 0 {
		return []string{"0000-00-00", "0000-00-00 00:00:00"}[r.IntN(2)]
	}
	var t time.Time
	if timestamp {
		lo := time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC).Unix()
		hi := time.Date(2038, 1, 18, 0, 0, 0, 0, time.UTC).Unix()
		t = time.Unix(lo+r.Int64N(hi-lo), 0).UTC()
	} else {
		t = time.Date(1000+r.IntN(9000), time.Month(1+r.IntN(12)), 1+r.IntN(31), r.IntN(24), r.IntN(60), r.IntN(60), 0, time.UTC)
		if t.Year() > 9999 {
			t = t.AddDate(-1, 0, 0)
		}
	}
	if r.IntN(20) == 0 && frac > 0 {
		t = time.Date(t.Year(), t.Month(), t.Day(), 23, 59, 59, 0, time.UTC)
	}
	y, mo, d := t.Date()
	var date string
	switch r.IntN(6) {
	case 0:
		date = fmt.Sprintf("%d-%d-%d", y, mo, d)
	case 1:
		date = fmt.Sprintf("%04d/%02d/%02d", y, mo, d)
	case 2:
		if y >= 1970 && y <= 2069 {
			date = fmt.Sprintf("%02d-%02d-%02d", y%100, mo, d)
		}
	case 3:
		if frac == 0 {
			date = fmt.Sprintf("%04d%02d%02d", y, mo, d)
		}
	}
	if date == "" {
		date = fmt.Sprintf("%04d-%02d-%02d", y, mo, d)
	}
	if frac == 0 {
		if r.IntN(6) == 0 {
			return fmt.Sprintf("%04d-%02d-%02d 00:00:00", y, mo, d)
		}
		return date
	}
	if r.IntN(10) == 0 {
		return date // midnight
	}
	sep := " "
	if r.IntN(3) == 0 {
		sep = "T"
	}
	clock := fmt.Sprintf("%02d:%02d:%02d", t.Hour(), t.Minute(), t.Second())
	if r.IntN(4) == 0 {
		clock = fmt.Sprintf("%d:%d:%d", t.Hour(), t.Minute(), t.Second())
	}
	s := date + sep + clock
	switch n := r.IntN(frac + 4); {
	case n == 0:
	case n == 1: // more digits than the column keeps
		s += "." + digits(r, frac+1+r.IntN(3))
	case n == 2:
		s += "." + strings.Repeat("9", frac) + "5"
	default:
		s += "." + digits(r, 1+r.IntN(frac))
	}
	return s
}

func genTime(r *rand.Rand, frac int) string { return genTimeMax(r, frac, 838) }

// genTimeMax writes a TIME within +-maxH hours in a random spelling.
func genTimeMax(r *rand.Rand, frac, maxH int) string {
	h, m, s := r.IntN(maxH+1), r.IntN(60), r.IntN(60)
	if r.IntN(2) == 0 {
		h = r.IntN(24)
	}
	sign := ""
	if r.IntN(3) == 0 {
		sign = "-"
	}
	var out string
	switch r.IntN(5) {
	case 0:
		out = fmt.Sprintf("%s%d %02d:%02d:%02d", sign, h/24, h%24, m, s)
	case 1:
		out = fmt.Sprintf("%s%02d%02d%02d", sign, h, m, s)
	case 2:
		if s == 0 {
			return fmt.Sprintf("%s%d:%02d", sign, h, m)
		}
		out = fmt.Sprintf("%s%d:%d:%d", sign, h, m, s)
	default:
		out = fmt.Sprintf("%s%02d:%02d:%02d", sign, h, m, s)
	}
	switch r.IntN(4) {
	case 0:
	case 1:
		out += "." + digits(r, frac+1+r.IntN(3)) // more than kept
	default:
		if frac > 0 {
			out += "." + digits(r, 1+r.IntN(frac))
		}
	}
	return out
}

func genYear(r *rand.Rand) string {
	switch r.IntN(8) {
	case 0:
		return "0000"
	case 1: // not "00" or "0": see appendYear
		y := 1970 + r.IntN(99)
		if y >= 2000 {
			y++
		}
		return fmt.Sprintf("%02d", y%100)
	case 2:
		return fmt.Sprintf(" %d", 1901+r.IntN(255))
	}
	return strconv.Itoa(1901 + r.IntN(255))
}

// latin1Alphabet is alphabet's characters that latin1 (cp1252 on MariaDB)
// holds, and the euro sign, which it holds at 0x80.
var latin1Alphabet = []string{"a", "b", "Z", "0", " ", "é", "ß", "'", `"`, `\`, ",", "\t", "\n", "€"}

var alphabet = []string{"a", "b", "Z", "0", " ", "é", "ß", "日", "'", `"`, `\`, ",", "\t", "\n", "😀"}

// genChars writes up to n characters, sometimes ending in spaces.
func genChars(r *rand.Rand, n int) string { return genFrom(r, alphabet, n) }

// genFrom writes up to n characters of an alphabet, sometimes ending in
// spaces.
func genFrom(r *rand.Rand, alphabet []string, n int) string {
	k := r.IntN(n + 1)
	var b strings.Builder
	for i := 0; i < k; i++ {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	s := b.String()
	if pad := n - k; pad > 0 && r.IntN(3) == 0 {
		s += strings.Repeat(" ", 1+r.IntN(pad))
	}
	return s
}

func genBytes(r *rand.Rand, n int) string {
	b := make([]byte, r.IntN(n+1))
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	if len(b) > 0 && r.IntN(4) == 0 {
		b[len(b)-1] = 0
	}
	return string(b)
}

// genBit writes a BIT(10) value as the SQL reader decodes b'...' and 0x...
// literals: as few bytes as hold it, or two, or with a leading zero byte; or
// a single ASCII digit, whose byte is what the server stores.
func genBit(r *rand.Rand) string {
	v := r.IntN(1024)
	switch r.IntN(5) {
	case 0:
		return string([]byte{0, byte(v >> 8), byte(v)})
	case 1:
		return strconv.Itoa(r.IntN(10))
	case 2:
		if v < 256 {
			return string([]byte{byte(v)})
		}
	}
	return string([]byte{byte(v >> 8), byte(v)})
}

// genBit64 writes a BIT(64) value as the SQL reader decodes literals: eight
// bytes (the high bit often set), or fewer.
func genBit64(r *rand.Rand) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], r.Uint64())
	return string(b[r.IntN(3)*r.IntN(4):])
}

var enumMembers = []string{"red", "green", "blue", "it's", `back\slash`, "1", "3"}

func genEnum(r *rand.Rand) string { return genEnumOf(r, enumMembers) }

// genEnumOf writes a member of an ENUM as a dump may: itself, with
// trailing spaces, in upper case, or its 1-based index.
func genEnumOf(r *rand.Rand, enumMembers []string) string {
	i := r.IntN(len(enumMembers))
	m := enumMembers[i]
	switch r.IntN(5) {
	case 0:
		return m + "  "
	case 1:
		return strings.ToUpper(m)
	case 2:
		idx := strconv.Itoa(i + 1)
		if !contains(enumMembers, idx) {
			return idx
		}
	}
	return m
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func genSet(r *rand.Rand) string {
	members := []string{"a", "b", "c", "d", "e"}
	mask := r.IntN(32)
	if r.IntN(6) == 0 {
		return strconv.Itoa(mask)
	}
	var parts []string
	for k, m := range members {
		if mask&(1<<k) != 0 {
			if r.IntN(4) == 0 {
				m = strings.ToUpper(m)
			}
			parts = append(parts, m)
			if r.IntN(5) == 0 {
				parts = append(parts, m)
			}
		}
	}
	r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	return strings.Join(parts, ",")
}

// genJSON writes an object with unsorted keys and random spacing.
func genJSON(r *rand.Rand) string {
	sp := func() string { return strings.Repeat(" ", r.IntN(3)) }
	var value func(depth int) string
	value = func(depth int) string {
		switch n := r.IntN(8); {
		case n == 0 && depth < 3:
			var items []string
			for i := r.IntN(4); i > 0; i-- {
				items = append(items, sp()+value(depth+1)+sp())
			}
			return "[" + strings.Join(items, ",") + "]"
		case n == 1 && depth < 3:
			keys := []string{"z", "a", "mm", "b", "é", "key with space"}
			r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			var items []string
			for _, k := range keys[:r.IntN(len(keys))] {
				items = append(items, sp()+strconv.Quote(k)+sp()+":"+sp()+value(depth+1))
			}
			return "{" + strings.Join(items, ",") + sp() + "}"
		case n == 2:
			return []string{"true", "false", "null"}[r.IntN(3)]
		case n == 3:
			return strconv.Itoa(r.IntN(2000) - 1000)
		case n == 4:
			return []string{"1.0", "1e3", "-0.5", "12345678901234567890"}[r.IntN(4)]
		default:
			return strconv.Quote(genChars(r, 6))
		}
	}
	for {
		v := value(0)
		if v[0] == '{' || r.IntN(4) == 0 {
			return sp() + v + sp()
		}
	}
}
