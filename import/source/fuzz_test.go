package source

import (
	"reflect"
	"testing"
)

var fuzzDialects = []CSVConfig{
	DefaultCSV(),
	noHeader(),
	{Separator: "||", Delimiter: "'", Terminator: "|\n", Null: `\N`, BackslashEscape: true},
	{Separator: "\t", Delimiter: `"`, Terminator: ";", Null: "", Header: true},
	{Separator: ",", Delimiter: "", Null: `\N`},
}

// FuzzCSV: the parser must not panic, it must encode each row as LOAD
// DATA text exactly as a writer encodes its decoded values, and when the
// whole file reads cleanly, the chunks of any split must read the same
// rows.
func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n", "\"a\nb\",\"c\"\"d\"\r\n\\N,\"\\N\",,\n", "x||'y|\n'|\nz", "a\\\nb,c\n\n\n", "\"ab\"c,d\n", "\"open",
	} {
		f.Add([]byte(s), uint8(0), uint8(3))
		f.Add([]byte(s), uint8(0x82), uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, dialect, shard uint8) {
		cfg := fuzzDialects[int(dialect)%len(fuzzDialects)]
		if dialect&0x80 != 0 { // make tokens straddle buffer refills
			defer func(n int) { bufSize = n }(bufSize)
			bufSize = 4
		}
		p := writeFile(t, t.TempDir(), "d.t.csv", data)
		sameAsValues(t, p, cfg) // rows encoded by the reader (node/worker.go)
		whole, _, err := readChunk(t, wholeChunk(p, FormatCSV), cfg, 0, 0)
		size := int64(1 + int(shard)%(len(data)+1))
		for _, strict := range []bool{false, true} {
			c := cfg
			c.StrictFormat = strict
			chunks, serr := Split(DataFile{Path: p, Size: int64(len(data)), Format: FormatCSV}, size, c)
			if err != nil || strict {
				// Garbage, or a strict promise the data may break: only
				// check that nothing panics.
				for _, ch := range chunks {
					readChunk(t, ch, c, 0, 0)
				}
				continue
			}
			if serr != nil {
				t.Fatalf("split failed on a file that reads cleanly: %v", serr)
			}
			var got []gotRow
			for _, ch := range chunks {
				rows, _, err := readChunk(t, ch, c, 0, 0)
				if err != nil {
					t.Fatalf("chunk %+v: %v", ch, err)
				}
				got = append(got, rows...)
			}
			if len(got) != len(whole) || len(got) > 0 && !reflect.DeepEqual(got, whole) {
				t.Fatalf("shard %d: chunks %+v read\n%+v\nwhole file\n%+v", size, chunks, got, whole)
			}
		}
		if err == nil && len(whole) > 0 {
			i := int(shard) % len(whole)
			rest, _, err := readChunk(t, wholeChunk(p, FormatCSV), cfg, whole[i].End, whole[i].Nxt)
			if err != nil || len(rest) != len(whole)-i-1 || len(rest) > 0 && !reflect.DeepEqual(rest, whole[i+1:]) {
				t.Fatalf("resume after row %d: %+v %v", i, rest, err)
			}
		}
	})
}

// FuzzSQL: the parser must not panic, and resuming must read the rest.
func FuzzSQL(f *testing.F) {
	for _, s := range []string{
		mariadbDump, mydumperDump, "INSERT INTO t VALUES (1,'a'),(2,'b\n", "INSERT t(a) VALUE (0b101, x'0F', _binary'x');",
		"/*!40101 SET NAMES binary*/;\n-- c\n# d\nREPLACE INTO `t` VALUES (-1.5e-3,TRUE,null);",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(0x81))
	}
	f.Fuzz(func(t *testing.T, data []byte, at uint8) {
		if at&0x80 != 0 {
			defer func(n int) { bufSize = n }(bufSize)
			bufSize = 5
		}
		p := writeFile(t, t.TempDir(), "d.t.sql", data)
		whole, _, err := readChunk(t, wholeChunk(p, FormatSQL), CSVConfig{}, 0, 0)
		if err != nil || len(whole) == 0 {
			return
		}
		for i, r := range whole {
			if r.End > int64(len(data)) || i > 0 && r.End <= whole[i-1].End {
				t.Fatalf("row %d ends at %d", i, r.End)
			}
		}
		i := int(at) % len(whole)
		rest, _, err := readChunk(t, wholeChunk(p, FormatSQL), CSVConfig{}, whole[i].End, whole[i].Nxt)
		if err != nil || len(rest) != len(whole)-i-1 || len(rest) > 0 && !reflect.DeepEqual(rest, whole[i+1:]) {
			t.Fatalf("resume after row %d: %+v %v", i, rest, err)
		}
	})
}
