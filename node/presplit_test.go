package node

import (
	"testing"

	"storm/meta"
)

func TestShardBits(t *testing.T) {
	for _, c := range []struct {
		info string
		bits int
		ok   bool
	}{
		{"SHARD_BITS=4", 4, true},
		{"PK_AUTO_RANDOM_BITS=5", 5, true},
		{"NOT_SHARDED", 0, false},
		{"NOT_SHARDED(PK_IS_HANDLE)", 0, false},
		{"", 0, false},
	} {
		if bits, ok := shardBits(c.info); bits != c.bits || ok != c.ok {
			t.Errorf("shardBits(%q) = %d, %v; want %d, %v", c.info, bits, ok, c.bits, c.ok)
		}
	}
}

// Split keys as SQL: integers as they are (within BIGINT or BIGINT
// UNSIGNED), text quoted with its quotes and backslashes escaped, bytes
// that are not UTF-8 in hex.
func TestSQLLiteral(t *testing.T) {
	for _, c := range []struct {
		v       string
		integer bool
		want    string
	}{
		{"42", true, "42"},
		{"-9223372036854775808", true, "-9223372036854775808"},
		{"18446744073709551615", true, "18446744073709551615"},
		{"1e3", true, "'1e3'"},
		{"42", false, "'42'"},
		{`it's a \ path`, false, `'it''s a \\ path'`},
		{"\xff\x00", false, "X'FF00'"},
	} {
		if got := sqlLiteral([]byte(c.v), c.integer); got != c.want {
			t.Errorf("sqlLiteral(%q, %v) = %s, want %s", c.v, c.integer, got, c.want)
		}
	}
}

func TestSplitStmt(t *testing.T) {
	for _, c := range []struct {
		ps   meta.PreSplit
		want string
	}{
		{meta.PreSplit{DB: "d", Table: "t`x", Method: meta.PreSplitFirstKeys, By: []string{"(10)", "('a', 2)"}},
			"SPLIT TABLE `d`.`t``x` BY (10), ('a', 2)"},
		{meta.PreSplit{DB: "d", Table: "t", Method: meta.PreSplitEven, Between: "(0) AND (" + maxRowIDRange + ")", Regions: 16},
			"SPLIT TABLE `d`.`t` BETWEEN (0) AND (9223372036854775807) REGIONS 16"},
	} {
		if got := splitStmt(c.ps); got != c.want {
			t.Errorf("splitStmt = %s, want %s", got, c.want)
		}
	}
}
