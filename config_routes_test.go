package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"storm/import/source"
	"storm/meta"
)

// [[source.files]] rules reach the job spec in order, and a bad rule is a
// config error that names it.
func TestLoadSourceFiles(t *testing.T) {
	base := `
[job]
id = "routes"
[source]
dir = "/data/dump"
`
	cases := []struct {
		name    string
		rules   string
		want    []source.Route
		wantErr string
	}{
		{name: "none"},
		{name: "two rules", rules: `
[[source.files]]
pattern = '(?i)^(?:[^/]*/)*([a-z0-9_]+)\.([a-z0-9_]+)\.(?:\d+)\.(csv|sql)(?:\.(gz|zst))?$'
schema = "$1"
table = "$2"
type = "$3"
compression = "$4"

[[source.files]]
pattern = '\.tmp$'
type = "ignore"
`, want: []source.Route{
			{Pattern: `(?i)^(?:[^/]*/)*([a-z0-9_]+)\.([a-z0-9_]+)\.(?:\d+)\.(csv|sql)(?:\.(gz|zst))?$`, Schema: "$1", Table: "$2", Type: "$3", Compression: "$4"},
			{Pattern: `\.tmp$`, Type: "ignore"},
		}},
		{name: "bad pattern", rules: `
[[source.files]]
pattern = '\.tmp$'
type = "ignore"

[[source.files]]
pattern = '^export/(\w+.csv$'
schema = "shop"
table = "$1"
type = "csv"
`, wantErr: `source.files rule #2 (pattern "^export/(\\w+.csv$"): error parsing regexp: missing closing )`},
		{name: "bad type", rules: `
[[source.files]]
pattern = 'x'
schema = "shop"
table = "t"
type = "avro"
`, wantErr: `source.files rule #1 (pattern "x"): type "avro"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "storm.toml")
			if err := os.WriteFile(path, []byte(base+c.rules), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := parse(commonFlags("node"), []string{"--config", path})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			spec := s.spec()
			if !reflect.DeepEqual(spec.Source.Routes, c.want) {
				t.Fatalf("routes %+v\nwant %+v", spec.Source.Routes, c.want)
			}
			// Without rules the spec is what it was before they existed;
			// with them, a node with other rules is told what differs.
			if c.want == nil {
				if strings.Contains(fmtSpec(s), `"files"`) {
					t.Fatalf("spec without rules mentions them: %s", fmtSpec(s))
				}
				return
			}
			other := spec
			other.Source.Routes = c.want[:1]
			if d := spec.Diff(other); len(d) != 1 || !strings.HasPrefix(d[0], "source.files: ") {
				t.Fatalf("diff %q", d)
			}
			var back meta.Spec
			if err := meta.Decode("spec", []byte(meta.Encode(spec)), &back); err != nil || !reflect.DeepEqual(back.Source.Routes, c.want) {
				t.Fatalf("spec round trip: %+v %v", back.Source.Routes, err)
			}
		})
	}
}
