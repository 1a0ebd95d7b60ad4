package gendump

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"storm/import/source"
	"storm/internal/mariadbtest"
)

// The claim ExpectedRows makes — "what MariaDB returns" — checked against a
// real server, independently of the importer: the schema files are run as
// they are, SQL files through the client with multiple statements, CSV files
// through LOAD DATA (MariaDB's own CSV parser), and every column is read back
// over the text protocol.
func TestMariaDBReturnsExpectedRows(t *testing.T) {
	// No skip when mariadbd is missing: Start fails and names the package.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := mariadbtest.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	o := Options{Dir: t.TempDir(), DB: "gendump_check", Rows: 12000, Seed: 5, Format: "mixed", FilesPerTable: 3, Header: true}
	if _, err := Generate(o); err != nil {
		t.Fatal(err)
	}
	l, err := source.Discover(o.Dir)
	if err != nil {
		t.Fatal(err)
	}

	// Schema files run as single statements, as a plain client sends them.
	plain, err := sql.Open("mysql", srv.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	conn, err := plain.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	run := func(path string) {
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, string(text)); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	run(l.Databases[0].SchemaFile)
	if _, err := conn.ExecContext(ctx, "USE `"+o.DB+"`"); err != nil {
		t.Fatal(err)
	}
	for _, tab := range l.Tables {
		run(tab.SchemaFile)
	}
	conn.Close()

	cfg, err := mysql.ParseDSN(srv.DSN(o.DB))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MultiStatements = true
	loader, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer loader.Close()
	loader.SetMaxIdleConns(0) // SQL files leave their connection in SET NAMES binary
	for _, tab := range l.Tables {
		cols := "`" + strings.Join(Tables(Options{Tables: []string{tab.Name}})[0].Columns, "`,`") + "`"
		for _, f := range tab.Files {
			loadFile(ctx, t, loader, f, tab.Name, cols)
		}
	}

	for _, ti := range Tables(o) {
		order := "id"
		if ti.PK == nil {
			order = "seq"
		}
		q := fmt.Sprintf("SELECT `%s` FROM `%s`.`%s` ORDER BY `%s`", strings.Join(ti.Columns, "`,`"), o.DB, ti.Name, order)
		rows, err := plain.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		raw := make([]sql.RawBytes, len(ti.Columns))
		ptrs := make([]any, len(raw))
		for i := range raw {
			ptrs[i] = &raw[i]
		}
		n := 0
		err = ExpectedRows(o, ti.Name, func(want []*string) error {
			if !rows.Next() {
				return fmt.Errorf("only %d rows in the table", n)
			}
			n++
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			for i, w := range want {
				if (raw[i] == nil) != (w == nil) || w != nil && string(raw[i]) != *w {
					got := "NULL"
					if raw[i] != nil {
						got = fmt.Sprintf("%q", raw[i])
					}
					return fmt.Errorf("row %d, column %s: MariaDB returns %s, expected %s", n, ti.Columns[i], got, show(w))
				}
			}
			return nil
		})
		if err == nil && rows.Next() {
			err = fmt.Errorf("more than the %d expected rows", n)
		}
		if err == nil {
			err = rows.Err()
		}
		rows.Close()
		if err != nil {
			t.Fatalf("%s: %v", ti.Name, err)
		}
	}
}

// loadFile loads one data file into table.
func loadFile(ctx context.Context, t *testing.T, db *sql.DB, f source.DataFile, table, cols string) {
	t.Helper()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data, err := os.ReadFile(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Format == source.FormatSQL {
		if _, err := conn.ExecContext(ctx, string(data)); err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		return
	}
	term := `\n`
	if head, _, _ := strings.Cut(string(data), "\n"); strings.HasSuffix(head, "\r") {
		term = `\r\n`
	}
	mysql.RegisterLocalFile(f.Path)
	q := fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE `%s` CHARACTER SET binary "+
		`FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '"' ESCAPED BY '\\' LINES TERMINATED BY '%s' IGNORE 1 LINES (%s)`,
		f.Path, table, term, cols)
	if _, err := conn.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s: %v", f.Path, err)
	}
	// LOCAL turns data errors into warnings, so look for them.
	rows, err := conn.QueryContext(ctx, "SHOW WARNINGS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var level, msg string
		var code int
		if err := rows.Scan(&level, &code, &msg); err != nil {
			t.Fatal(err)
		}
		t.Errorf("%s: %s %d: %s", f.Path, level, code, msg)
	}
}
