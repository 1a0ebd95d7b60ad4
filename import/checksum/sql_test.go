package checksum

import (
	"errors"
	"strings"
	"testing"
)

// Which columns the server hashes, and how; the rest go to the read-back.
// mariadb_test.go checks the claimed ones value by value on a server.
func TestRowHashSQLRouting(t *testing.T) {
	withCS := func(c Column, cs string) Column { c.Charset = cs; return c }
	nullable := func(c Column) Column { c.Nullable = true; return c }
	cases := []struct {
		name string
		c    Column
		term string // the column's term; "" when it must be read back
		why  string // in the error when read back
	}{
		{"int", col("int", "int(11)", 0), "`c_int`", ""},
		{"nullable int", nullable(col("int", "int(11)", 0)), "IFNULL(`c_int`,'N')", ""},
		{"unsigned bigint", col("bigint", "bigint(20) unsigned", 0), "`c_bigint`", ""},
		{"decimal", col("decimal", "decimal(14,4)", 4), "`c_decimal`", ""},
		{"year", col("year", "year(4)", 0), "`c_year`", ""},
		{"date", col("date", "date", 0), "`c_date`", ""},
		{"datetime(6)", mariaCol("datetime", "datetime(6)", 6), "`c_datetime`", ""},
		{"timestamp", mariaCol("timestamp", "timestamp(3)", 3), "`c_timestamp`", ""},
		{"time", mariaCol("time", "time(2)", 2), "`c_time`", ""},
		{"bit", col("bit", "bit(10)", 0), "(`c_bit`+0)", ""},
		{"char utf8mb4", withCS(col("char", "char(8)", 0), "utf8mb4"), "CONCAT(LENGTH(`c_char`),':',`c_char`)", ""},
		{"varchar utf8mb3", withCS(col("varchar", "varchar(9)", 0), "utf8mb3"),
			"CONCAT(LENGTH(CONVERT(`c_varchar` USING utf8mb4)),':',CONVERT(`c_varchar` USING utf8mb4))", ""},
		{"text ascii", withCS(col("text", "text", 0), "ascii"),
			"CONCAT(LENGTH(CONVERT(`c_text` USING utf8mb4)),':',CONVERT(`c_text` USING utf8mb4))", ""},
		{"latin1", withCS(col("varchar", "varchar(9)", 0), "latin1"),
			"CONCAT(LENGTH(CONVERT(`c_varchar` USING utf8mb4)),':',CONVERT(`c_varchar` USING utf8mb4))", ""},
		{"gbk", withCS(col("varchar", "varchar(9)", 0), "gbk"), "", "character set gbk"},
		{"binary", col("binary", "binary(6)", 0), "CONCAT(LENGTH(`c_binary`),':',`c_binary`)", ""},
		{"nullable blob", nullable(col("blob", "blob", 0)), "IFNULL(CONCAT(LENGTH(`c_blob`),':',`c_blob`),'N')", ""},
		{"char binary", withCS(col("char", "char(4)", 0), "binary"), "CONCAT(LENGTH(`c_char`),':',`c_char`)", ""},
		{"enum", withCS(col("enum", "enum('a','b')", 0), "utf8mb4"), "CONCAT(LENGTH(`c_enum`),':',`c_enum`)", ""},
		{"set", withCS(col("set", "set('a','b')", 0), "utf8mb4"), "CONCAT(LENGTH(`c_set`),':',`c_set`)", ""},
		{"MariaDB JSON (a longtext)", withCS(col("longtext", "longtext", 0), "utf8mb4"),
			"CONCAT(LENGTH(`c_longtext`),':',`c_longtext`)", ""},
		{"ucs2", withCS(col("varchar", "varchar(9)", 0), "ucs2"), "", "character set ucs2"},
		{"varchar without a charset", col("varchar", "varchar(9)", 0), "", "no character set"},
		{"float", col("float", "float", 0), "", "floating-point"},
		{"double", col("double", "double", 0), "", "floating-point"},
		{"double(10,2)", col("double", "double(10,2)", 2), "", "floating-point"},
		{"JSON", col("json", "json", 0), "", "JSON"},
		{"geometry", col("geometry", "geometry", 0), "", "a geometry column"},
		{"uuid", col("uuid", "uuid", 0), "", "a uuid column"},
		{"bad enum", withCS(col("enum", "enum('a", 0), "utf8mb4"), "", "column definition"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			term, err := sqlTerm(tc.c)
			expr, rowErr := RowHashSQL(RowHash32, []Column{col("int", "int(11)", 0), tc.c})
			if tc.term != "" {
				if err != nil || term != tc.term {
					t.Fatalf("term %q, %v; want %q", term, err, tc.term)
				}
				row := "CONCAT_WS(',',`c_int`," + tc.term + ")"
				if want := "CRC32(SHA1(" + row + "))"; rowErr != nil || expr != want {
					t.Errorf("row hash %q, %v; want %q", expr, rowErr, want)
				}
				expr, rowErr = RowHashSQL(RowHash64, []Column{col("int", "int(11)", 0), tc.c})
				if want := "CAST(CONV(LEFT(SHA1(" + row + "),16),16,10) AS UNSIGNED)"; rowErr != nil || expr != want {
					t.Errorf("64-bit row hash %q, %v; want %q", expr, rowErr, want)
				}
				return
			}
			var ue *UnsupportedError
			if !errors.As(err, &ue) || ue.Column != tc.c.Name || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("term %q, %v; want an UnsupportedError naming %s and saying %q", term, err, tc.c.Name, tc.why)
			}
			// One such column sends the whole row to the read-back.
			if !errors.As(rowErr, &ue) || ue.Column != tc.c.Name {
				t.Errorf("row hash %q, %v; want the column's error", expr, rowErr)
			}
		})
	}
	if _, err := RowHashSQL(RowHash32, nil); err == nil {
		t.Error("no columns: no error")
	}
	// A name with a backquote is quoted.
	if term, err := sqlTerm(Column{Name: "a`b", DataType: "int", ColumnType: "int"}); err != nil || term != "`a``b`" {
		t.Errorf("term %q, %v", term, err)
	}
}

// Hashing a row allocates nothing once the hasher's buffer has grown: a
// worker hashes every source row.
func TestHashAllocs(t *testing.T) {
	cols := []Column{
		col("int", "int(11)", 0), col("decimal", "decimal(14,4)", 4), mariaCol("datetime", "datetime(6)", 6),
		mariaCol("time", "time", 0), col("year", "year(4)", 0), col("char", "char(8)", 0), col("varchar", "varchar(40)", 0),
		col("enum", "enum('a','b')", 0), col("set", "set('a','b')", 0), col("binary", "binary(4)", 0), col("blob", "blob", 0),
		col("bit", "bit(10)", 0),
	}
	long := Field{Data: []byte(strings.Repeat("x", 2*streamAbove))}
	rows := [][]Field{
		{text("-12"), text("1.5"), text("2024-03-05 07:08:09.5"), text("-1 02:03:04"), text("24"), text("ab  "),
			text("hello"), text("b"), text("b,a"), text("ab"), text("blob"), text("\x01\x02")},
		{text("7"), text("1.5000"), text("2024-03-05 07:08:09.500000"), text("10:11:12"), text("2024"), nullField,
			text("hello"), nullField, text(""), text("abcd"), long, nullField},
	}
	for _, rh := range RowHashes {
		h := NewRowHasher(rh, cols)
		for _, row := range rows {
			if _, err := h.Hash(row); err != nil {
				t.Fatal(err)
			}
		}
		if n := testing.AllocsPerRun(100, func() {
			for _, row := range rows {
				_, _ = h.Hash(row)
			}
		}); n != 0 {
			t.Errorf("%s: %.1f allocations per run of Hash", rh, n)
		}
	}
}

func TestServerComputes(t *testing.T) {
	for v, want := range map[string]bool{
		"10.11.19-MariaDB-0+deb12u1": true,
		"8.0.11-TiDB-v8.5.1":         true,
		"5.7.25-TiDB-v7.5.0":         true,
		"8.0.36":                     false, // MySQL: untested, read back
		"8.4.0-commercial":           false,
		"11.4.2-MariaDB-ubu2404-log": true,
	} {
		if got := ServerComputes(v); got != want {
			t.Errorf("ServerComputes(%q) = %v, want %v", v, got, want)
		}
	}
}
