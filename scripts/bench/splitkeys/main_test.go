package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	cases := []struct {
		name, schema, create string
		keys                 []string
	}{
		{
			name: "sysbench, as mydumper writes it",
			schema: "/*!40101 SET NAMES binary*/;\n/*!40014 SET FOREIGN_KEY_CHECKS=0*/;\n\nCREATE TABLE `sbtest1` (\n" +
				"  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `k` int(11) NOT NULL DEFAULT 0,\n" +
				"  `c` char(120) NOT NULL DEFAULT '',\n  `pad` char(60) NOT NULL DEFAULT '',\n" +
				"  PRIMARY KEY (`id`),\n  KEY `k_1` (`k`)\n) ENGINE=InnoDB AUTO_INCREMENT=300001 DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci;\n",
			create: "/*!40101 SET NAMES binary*/;\n/*!40014 SET FOREIGN_KEY_CHECKS=0*/;\n\nCREATE TABLE `sbtest1` (\n" +
				"  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `k` int(11) NOT NULL DEFAULT 0,\n" +
				"  `c` char(120) NOT NULL DEFAULT '',\n  `pad` char(60) NOT NULL DEFAULT '',\n" +
				"  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=300001 DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci;\n",
			keys: []string{"KEY `k_1` (`k`)"},
		},
		{
			name: "keys between others, unique and fulltext",
			schema: "CREATE TABLE `t` (\n  `a` int NOT NULL,\n  `b` text,\n  PRIMARY KEY (`a`),\n  KEY `ib` (`b`(10),`a`),\n" +
				"  UNIQUE KEY `u` (`b`(20)),\n  FULLTEXT KEY `f` (`b`),\n  index `lower` (`a`)\n);\n",
			create: "CREATE TABLE `t` (\n  `a` int NOT NULL,\n  `b` text,\n  PRIMARY KEY (`a`),\n  UNIQUE KEY `u` (`b`(20))\n);\n",
			keys:   []string{"KEY `ib` (`b`(10),`a`)", "FULLTEXT KEY `f` (`b`)", "index `lower` (`a`)"},
		},
		{
			name:   "no secondary index",
			schema: "CREATE TABLE `e` (\n  `seq` bigint NOT NULL,\n  `x` int\n) ENGINE=InnoDB;\n",
			create: "CREATE TABLE `e` (\n  `seq` bigint NOT NULL,\n  `x` int\n) ENGINE=InnoDB;\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			create, keys, err := split(c.schema)
			if err != nil {
				t.Fatal(err)
			}
			if create != c.create {
				t.Errorf("create:\n%s\nwant:\n%s", create, c.create)
			}
			if strings.Join(keys, "|") != strings.Join(c.keys, "|") {
				t.Errorf("keys %q, want %q", keys, c.keys)
			}
		})
	}
	if _, _, err := split("SET NAMES utf8;\n"); err == nil || !strings.Contains(err.Error(), "no CREATE TABLE") {
		t.Fatalf("a file without CREATE TABLE: %v", err)
	}
}

func TestRunWritesOneAlter(t *testing.T) {
	dir := t.TempDir()
	schema := filepath.Join(dir, "db.o-schema.sql")
	if err := os.WriteFile(schema, []byte("CREATE TABLE `o` (\n  `id` int,\n  PRIMARY KEY (`id`),\n  KEY `a` (`id`),\n  KEY `b` (`id`)\n);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(schema, "o", filepath.Join(dir, "c.sql"), filepath.Join(dir, "a.sql")); err != nil {
		t.Fatal(err)
	}
	alter, _ := os.ReadFile(filepath.Join(dir, "a.sql"))
	if want := "ALTER TABLE `o` ADD KEY `a` (`id`), ADD KEY `b` (`id`);\n"; string(alter) != want {
		t.Fatalf("alter %q, want %q", alter, want)
	}
}
