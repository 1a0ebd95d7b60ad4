package source

import (
	"reflect"
	"testing"
)

const mariadbDump = "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n" + // 1
	"--\n" +
	"-- Host: localhost    Database: shop\n" +
	"-- ------------------------------------------------------\n" +
	"-- Server version\t10.11.6-MariaDB-0+deb12u1\n" + // 5
	"\n" +
	"/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n" +
	"/*!40101 SET NAMES utf8mb4 */;\n" +
	"/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;\n" +
	"/*!40103 SET TIME_ZONE='+00:00' */;\n" + // 10
	"/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n" +
	"/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n" +
	"/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */;\n" +
	"\n" +
	"--\n" + // 15
	"-- Dumping data for table `t`\n" +
	"--\n" +
	"\n" +
	"LOCK TABLES `t` WRITE;\n" +
	"/*!40000 ALTER TABLE `t` DISABLE KEYS */;\n" + // 20
	"INSERT INTO `t` VALUES (1,'a\\'b',NULL,0x00FF,-1.5e3),(2,'x);(y','it''s \"q\"',X'',+7),\n" +
	"(3,'multi\nline','\\0\\n\\r\\t\\Z\\\\\\%\\_',X'0a0B',.5);\n" +
	"/*!40000 ALTER TABLE `t` ENABLE KEYS */;\n" +
	"UNLOCK TABLES;\n" + // 24
	"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n" +
	"\n" +
	"-- Dump completed on 2024-01-01 12:00:00\n"

const mydumperDump = "/*!40101 SET NAMES binary*/;\n" + // 1
	"/*!40014 SET FOREIGN_KEY_CHECKS=0*/;\n" +
	"/*!40103 SET TIME_ZONE='+00:00' */;\n" +
	"INSERT INTO `t` (`id`,`na``me`,b) VALUES(1,\"a\\\"b\",b'101')\n" +
	",(2,_binary 'bin',b'000000001')\n" + // 5
	",(3,_utf8mb4'x',_binary 0xC3A9)\n" +
	";\n" +
	"# a comment\n" +
	"insert ignore into shop.t values (true, FALSE, null), /* inline */ (N'n', -0, 1E+3);\n" +
	"REPLACE INTO `t` (id) VALUE (4);\n" + // 10
	"START TRANSACTION; COMMIT; USE `shop`; SET @x = 'INSERT INTO t VALUES (9);';\n" +
	"INSERT INTO t VALUES ()"

func TestSQLRead(t *testing.T) { smallBuffers(t, sQLRead) }

func sQLRead(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  [][]string
		lines []int64
		cols  [][]string
	}{
		{"mariadb-dump", mariadbDump, [][]string{
			{"1", "a'b", N, "\x00\xff", "-1.5e3"},
			{"2", "x);(y", `it's "q"`, "", "+7"},
			{"3", "multi\nline", "\x00\n\r\t\x1a\\\\%\\_", "\x0a\x0b", ".5"},
		}, []int64{21, 21, 22}, [][]string{nil, nil, nil}},
		{"mydumper", mydumperDump, [][]string{
			{"1", `a"b`, "\x05"},
			{"2", "bin", "\x00\x01"},
			{"3", "x", "é"},
			{"1", "0", N},
			{"n", "-0", "1E+3"},
			{"4"},
			{},
		}, []int64{4, 5, 6, 9, 9, 10, 12}, [][]string{
			{"id", "na`me", "b"}, {"id", "na`me", "b"}, {"id", "na`me", "b"}, nil, nil, {"id"}, nil,
		}},
		{"only comments", "-- x\n/* y */ SET a=1;\n", nil, nil, nil},
		{"empty", "", nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "shop.t.00001.sql", []byte(tc.in))
			r, err := OpenChunk(wholeChunk(p, FormatSQL), CSVConfig{}, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var got [][]string
			var lines []int64
			var cols [][]string
			for {
				row, err := r.Next()
				if err != nil {
					if err.Error() != "EOF" {
						t.Fatal(err)
					}
					break
				}
				got = append(got, vals(row))
				lines = append(lines, row.Line)
				cols = append(cols, r.Columns())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rows\n got  %q\n want %q", got, tc.want)
			}
			if !reflect.DeepEqual(lines, tc.lines) {
				t.Errorf("lines %v, want %v", lines, tc.lines)
			}
			if !reflect.DeepEqual(cols, tc.cols) {
				t.Errorf("columns %q, want %q", cols, tc.cols)
			}
			all, _ := mustRead(t, wholeChunk(p, FormatSQL), CSVConfig{})
			checkEnds(t, all, int64(len(tc.in)))
			checkResume(t, wholeChunk(p, FormatSQL), CSVConfig{}, all)
		})
	}
}

func TestSQLErrors(t *testing.T) { smallBuffers(t, sQLErrors) }

func sQLErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int64
		reason   string
		rowsOK   int
	}{
		{"unterminated string", "INSERT INTO t VALUES (1,'a'),\n(2,'b\n\n", 2, "unterminated string", 1},
		{"unterminated string, lines after it", "INSERT INTO t VALUES (1,'a'),\n(2,'b\nc\nd\n", 2, "unterminated string (it begins on line 2; the parser stopped on line 5", 1},
		{"unterminated escape", "INSERT INTO t VALUES ('a\\", 1, "unterminated string", 0},
		{"tuple not closed", "INSERT INTO t VALUES (1,2),\n(3,\n4", 2, "tuple not closed", 1},
		{"unexpected token", "INSERT INTO t VALUES (1,2)\n(3,4);", 2, "unexpected", 1},
		{"function call", "INSERT INTO t VALUES (1,\nNOW());", 2, `"NOW"`, 0},
		{"missing comma", "INSERT INTO t VALUES (1 2);", 1, "unexpected", 0},
		{"bad number", "INSERT INTO t VALUES (1.2.3);", 1, "malformed number", 0},
		{"bad hex", "INSERT INTO t VALUES (X'0G');", 1, "malformed hex", 0},
		{"insert select", "\nINSERT INTO t SELECT * FROM u;", 2, "VALUES", 0},
		{"no tuple", "INSERT INTO t VALUES (1),", 1, "tuple", 1},
		{"unterminated comment", "/* x\n", 1, "unterminated comment", 0},
		{"on duplicate key", "INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a=1;", 1, "unexpected", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "d.t.sql", []byte(tc.in))
			rows, _, err := readChunk(t, wholeChunk(p, FormatSQL), CSVConfig{}, 0, 0)
			checkParseError(t, err, tc.line, tc.reason)
			if len(rows) != tc.rowsOK {
				t.Errorf("%d rows before the error, want %d", len(rows), tc.rowsOK)
			}
		})
	}
}

func TestDecodeRadix(t *testing.T) {
	for in, want := range map[string]string{"": "", "F": "\x0f", "ABC": "\x0a\xbc", "00ff": "\x00\xff"} {
		b := []byte(in)
		if got := string(b[:decodeHex(b)]); got != want {
			t.Errorf("hex %q: %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"": "", "1": "\x01", "11111111": "\xff", "100000000": "\x01\x00", "1010": "\x0a"} {
		b := []byte(in)
		if got := string(b[:decodeBits(b)]); got != want {
			t.Errorf("bits %q: %q, want %q", in, got, want)
		}
	}
}
