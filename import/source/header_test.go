package source

import (
	"strings"
	"testing"
)

func TestDetectHeader(t *testing.T) {
	cols := []string{"id", "Name", "email"}
	tests := []struct {
		name    string
		in      string
		comp    Compression
		want    bool
		wantErr []string // in the error; nil: none
	}{
		{"every column", "id,name,email\n1,a,b\n", "", true, nil},
		{"some columns, any order, any case", "EMAIL,ID\nb,1\n", "", true, nil},
		{"quoted", "\"id\",\"name\"\n1,a\n", "", true, nil},
		{"data", "1,a,b\n", "", false, nil},
		{"a header-like data row that names no column", "Alice,Smith,alice@example.com\n", "", false, nil},
		{"empty file", "", "", false, nil},
		{"gzip", "id,name\n1,a\n", CompressionGzip, true, nil},
		{"zstd data", "1,a,b\n", CompressionZstd, false, nil},
		{"a header with one wrong name", "id,nmae,email\n1,a,b\n", "", false,
			[]string{"d.t.csv:1", `"nmae" do not`, "id, email name columns", `source.csv.header to true or false`}},
		{"a data row holding a column's name", "id,Smith,x\n", "", false, []string{`"Smith", "x" do not`}},
		{"NULL is no name", "id,\\N\n", "", false, []string{`NULL do not`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "d.t.csv"
			data := []byte(tc.in)
			switch tc.comp {
			case CompressionGzip:
				name += ".gz"
				data = compress(t, tc.comp, data)
			case CompressionZstd:
				name += ".zst"
				data = compress(t, tc.comp, data)
			}
			p := writeFile(t, t.TempDir(), name, data)
			got, err := DetectHeader(DataFile{Path: p, Format: FormatCSV, Compression: tc.comp}, DefaultCSV(), cols)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("no error (header %v)", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("header %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// TestChunkHeader: a chunk's Header, the plan's finding, overrides the
// config's.
func TestChunkHeader(t *testing.T) {
	p := writeFile(t, t.TempDir(), "d.t.csv", []byte("id,name\n1,a\n2,b\n"))
	for _, h := range []bool{true, false} {
		cfg := DefaultCSV()
		cfg.Header = !h
		ch := wholeChunk(p, FormatCSV)
		ch.Header = &h
		rows, cols, err := readChunk(t, ch, cfg, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := 3
		if h {
			want = 2
		}
		if len(rows) != want || (h && strings.Join(cols, ",") != "id,name") || (!h && cols != nil) {
			t.Errorf("header %v: %d rows, columns %q", h, len(rows), cols)
		}
	}
}
