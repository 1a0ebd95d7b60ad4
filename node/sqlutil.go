package node

import (
	"errors"
	"strings"

	"github.com/go-sql-driver/mysql"
)

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// isExists: a racing (or dead) earlier leader created it first.
func isExists(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1007 || me.Number == 1050)
}
