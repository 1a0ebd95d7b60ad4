package checksum

// The server's side of the row hash: the row string of canonical.go built
// by the server itself with CONCAT_WS, so that a range of the target is
// digested by one aggregate query,
//
//	SELECT COUNT(*), BIT_XOR(<RowHashSQL>) FROM t WHERE <range>
//
// instead of being sent over the network and hashed here. That holds only
// where the server's own text of a column is the canonical form storm
// computes from the source. RowHashSQL claims a column only when
// mariadb_test.go has shown it on MariaDB 10.11 and tidb_test.go on TiDB
// (the rules came out the same); for any other column it returns an
// *UnsupportedError, and on any other server ServerComputes says no: the
// caller then reads the range back and hashes it here, with the same
// function.

import (
	"errors"
	"fmt"
	"strings"
)

// ServerComputes says whether a server, by its VERSION(), is one whose
// text of each type RowHashSQL knows: MariaDB and TiDB. MySQL is close but
// untested (it prints some types differently), so it reads back.
func ServerComputes(version string) bool {
	return strings.Contains(version, "MariaDB") || strings.Contains(version, "TiDB")
}

// UnsupportedError says why the server can't compute the row hash of a
// column as storm does.
type UnsupportedError struct {
	Column     string
	ColumnType string
	Reason     string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("column %s %s: %s", e.Column, e.ColumnType, e.Reason)
}

// RowHashSQL returns the SQL expression of row hash rh of cols (in this
// order), the value RowHasher.Hash computes, evaluated by the server per
// row: CRC32(SHA1(CONCAT_WS(',', term...))) for RowHash32. The session
// must use the import's settings: its time_zone (TIMESTAMP), and utf8mb4 as
// the connection character set, which the read-back gets too.
func RowHashSQL(rh RowHash, cols []Column) (string, error) {
	if len(cols) == 0 {
		return "", errors.New("checksum: no columns to hash")
	}
	terms := make([]string, len(cols))
	for i, c := range cols {
		t, err := sqlTerm(c)
		if err != nil {
			return "", err
		}
		terms[i] = t
	}
	return rh.sql("CONCAT_WS(','," + strings.Join(terms, ",") + ")"), nil
}

// binaryTypes have no character set: information_schema says NULL.
var binaryTypes = map[string]bool{
	"binary": true, "varbinary": true, "tinyblob": true, "blob": true, "mediumblob": true, "longblob": true,
}

// stringTypes are the types kept as they are whose server text is their
// bytes. MariaDB's JSON is a LONGTEXT and says so in DATA_TYPE.
var stringTypes = map[string]bool{
	"varchar": true, "tinytext": true, "text": true, "mediumtext": true, "longtext": true,
	"varbinary": true, "tinyblob": true, "blob": true, "mediumblob": true, "longblob": true,
}

// sqlTerm is the SQL of a column's term in the row string.
func sqlTerm(c Column) (string, error) {
	s := prepare(c)
	unsupported := func(reason string) (string, error) {
		return "", &UnsupportedError{Column: c.Name, ColumnType: c.ColumnType, Reason: reason}
	}
	if s.err != nil {
		return unsupported("column definition: " + s.err.Error())
	}
	q := "`" + strings.ReplaceAll(c.Name, "`", "``") + "`"
	var e string
	switch s.kind {
	case kInt, kYear, kDecimal, kDate, kDateTime, kTime:
		// The server's text of these is their canonical form (checked per
		// value by the property tests).
		e = q
	case kBit:
		// A BIT's text is its bytes; +0 gives the number in decimal.
		e = "(" + q + "+0)"
	case kChar, kBinary, kEnum, kSet, kRaw:
		if s.kind == kRaw && !stringTypes[c.DataType] {
			return unsupported("a " + c.DataType + " column: its text on the server is not shown to be the bytes the read-back gets")
		}
		t, reason := textSQL(q, c)
		if reason != "" {
			return unsupported(reason)
		}
		e = "CONCAT(LENGTH(" + t + "),':'," + t + ")"
	case kFloat, kDouble, kFixedFloat, kFixedDouble:
		// MariaDB prints 1234567 in a FLOAT as 1234570 and 1e20 as 1e20;
		// storm compares floats by value, normalised to Go's notation.
		return unsupported("the server's text of a floating-point number is not storm's normalised form")
	case kJSON:
		return unsupported("the server's text of a JSON document is not storm's normalised form")
	default:
		return unsupported("no server-side form")
	}
	if c.Nullable {
		e = "IFNULL(" + e + ",'N')"
	}
	return e, nil
}

// textSQL is the SQL of a string column's bytes as the read-back gets them
// on a utf8mb4 connection, or why it can't be given.
func textSQL(q string, c Column) (string, string) {
	cs := c.Charset
	switch {
	case cs == "" && binaryTypes[c.DataType], cs == "binary", cs == "utf8mb4":
		// Bytes as stored: no conversion on a utf8mb4 connection either.
		return q, ""
	case cs == "utf8mb3" || cs == "utf8" || cs == "ascii" || cs == "latin1":
		// Each converts to utf8mb4 without loss, as the connection does
		// (latin1, cp1252 on MariaDB, shown by the property tests on both).
		return "CONVERT(" + q + " USING utf8mb4)", ""
	case cs == "":
		return "", "no character set known"
	}
	return "", "character set " + cs + ": its conversion on the server is not shown to equal the connection's"
}
