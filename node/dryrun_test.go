package node

import "testing"

func TestQualifyCreate(t *testing.T) {
	cases := []struct{ in, want string }{
		{"CREATE TABLE `t` (id INT)", "CREATE TABLE `d`.`t` (id INT)"},
		{"create table if not exists t (id INT)", "create table if not exists `d`.t (id INT)"},
		{"\n  CREATE TABLE `a``b` (x INT)", "\n  CREATE TABLE `d`.`a``b` (x INT)"},
		{"CREATE TABLE `x`.`t` (id INT)", "CREATE TABLE `x`.`t` (id INT)"},
		{"CREATE TABLE x .t (id INT)", "CREATE TABLE x .t (id INT)"},
		{"CREATE VIEW v AS SELECT 1", "CREATE VIEW v AS SELECT 1"},
	}
	for _, c := range cases {
		if got := qualifyCreate(c.in, "d"); got != c.want {
			t.Errorf("qualifyCreate(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
