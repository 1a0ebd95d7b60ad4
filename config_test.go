package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The file, then STORM_* variables, then flags: each later source wins, and
// a bad value is named.
func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "storm.toml")
	if err := os.WriteFile(path, []byte(`
[job]
id = "from-file"
[source]
dir = "/data/dump"
[target]
port = 4000
password = "file-secret"
[node]
id = "file-node"
workers = 3
[import]
shard-size = 1024
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(*settings) string
		wantErr string
	}{
		{name: "file only", check: func(s *settings) string {
			if s.Job.ID != "from-file" || s.Target.Port != 4000 || s.Node.Workers != 3 || s.spec().Import.ShardSize != 1024 ||
				s.Etcd.Prefix != "/storm" || s.Etcd.LeaseTTL != 10 || s.Import.OnDuplicate != "error" {
				return "file values or defaults not applied"
			}
			return ""
		}},
		{name: "env beats file", env: map[string]string{"STORM_TARGET_PORT": "5000", "STORM_NODE_ID": "env-node",
			"STORM_TARGET_PASSWORD": "env-secret", "STORM_ETCD_ENDPOINTS": "http://a:1,http://b:2"},
			check: func(s *settings) string {
				if s.Target.Port != 5000 || s.Node.ID != "env-node" || s.Target.Password != "env-secret" ||
					strings.Join(s.Etcd.Endpoints, " ") != "http://a:1 http://b:2" {
					return "environment not applied"
				}
				return ""
			}},
		{name: "flags beat env", env: map[string]string{"STORM_NODE_ID": "env-node"}, args: []string{"--node-id", "flag-node", "--workers", "7", "--job", "j2"},
			check: func(s *settings) string {
				if s.Node.ID != "flag-node" || s.Node.Workers != 7 || s.Job.ID != "j2" {
					return "flags not applied"
				}
				return ""
			}},
		{name: "bad on-duplicate", env: map[string]string{"STORM_IMPORT_ON_DUPLICATE": "merge"}, wantErr: `import.on-duplicate "merge"`},
		{name: "table pipeline defaults", check: func(s *settings) string {
			if sp := s.spec(); sp.Import.DeferIndexes != "auto" || !sp.Post.Analyze {
				return fmt.Sprintf("defer-indexes %q, analyze %v; want auto, true", sp.Import.DeferIndexes, sp.Post.Analyze)
			}
			return ""
		}},
		{name: "table pipeline off", env: map[string]string{"STORM_IMPORT_DEFER_INDEXES": "off", "STORM_POST_ANALYZE": "off"},
			check: func(s *settings) string {
				if sp := s.spec(); sp.Import.DeferIndexes != "off" || sp.Post.Analyze {
					return "import.defer-indexes and post.analyze not applied"
				}
				return ""
			}},
		{name: "bad defer-indexes", env: map[string]string{"STORM_IMPORT_DEFER_INDEXES": "always"}, wantErr: `import.defer-indexes "always": want auto or off`},
		{name: "bad analyze", env: map[string]string{"STORM_POST_ANALYZE": "yes"}, wantErr: `post.analyze "yes": want on or off`},
		{name: "bad workers", args: []string{"--workers", "0"}, wantErr: "node.workers must be at least 1"},
		{name: "pre-split on by default", check: func(s *settings) string {
			if got := s.spec().TiDB.PreSplit; got != "auto" {
				return "tidb.pre-split " + got + ", want auto"
			}
			return ""
		}},
		{name: "bad pre-split", env: map[string]string{"STORM_TIDB_PRE_SPLIT": "always"}, wantErr: `tidb.pre-split "always": want auto or off`},
		{name: "row hash of 32 bits by default", check: func(s *settings) string {
			if got := s.spec().Verify.RowHash; got != "sha1-crc32-1" {
				return "verify.row-hash " + got + ", want sha1-crc32-1"
			}
			return ""
		}},
		{name: "row hash of 64 bits", env: map[string]string{"STORM_VERIFY_ROW_HASH_BITS": "64"}, check: func(s *settings) string {
			if got := s.spec().Verify.RowHash; got != "sha1-concat-ws-1" {
				return "verify.row-hash " + got + ", want sha1-concat-ws-1"
			}
			return ""
		}},
		{name: "shard size with a unit", env: map[string]string{"STORM_IMPORT_SHARD_SIZE": "64MiB"}, check: func(s *settings) string {
			if got := s.spec().Import.ShardSize; got != 64<<20 {
				return fmt.Sprintf("import.shard-size %v, want %d", got, 64<<20)
			}
			return ""
		}},
		{name: "shard size auto", env: map[string]string{"STORM_IMPORT_SHARD_SIZE": "auto"}, check: func(s *settings) string {
			if got := s.spec().Import.ShardSize; !got.Auto() || !strings.Contains(fmtSpec(s), `"shard-size":"auto"`) {
				return fmt.Sprintf("import.shard-size %v, want auto in the spec: %s", got, fmtSpec(s))
			}
			return ""
		}},
		{name: "bad shard size", env: map[string]string{"STORM_IMPORT_SHARD_SIZE": "big"}, wantErr: `import.shard-size: size "big"`},
		{name: "zero shard size", env: map[string]string{"STORM_IMPORT_SHARD_SIZE": "0"}, wantErr: `import.shard-size "0" must be positive`},
		{name: "csv header auto", env: map[string]string{"STORM_SOURCE_CSV_HEADER": "auto"}, check: func(s *settings) string {
			if c := s.spec().Source.CSV; !c.HeaderAuto || c.Header {
				return "source.csv.header auto not applied"
			}
			return ""
		}},
		{name: "csv header false", env: map[string]string{"STORM_SOURCE_CSV_HEADER": "false"}, check: func(s *settings) string {
			if c := s.spec().Source.CSV; c.HeaderAuto || c.Header {
				return "source.csv.header false not applied"
			}
			return ""
		}},
		{name: "csv header by default", check: func(s *settings) string {
			if c := s.spec().Source.CSV; c.HeaderAuto || !c.Header {
				return "source.csv.header's default is not true"
			}
			return ""
		}},
		{name: "bad csv header", env: map[string]string{"STORM_SOURCE_CSV_HEADER": "maybe"}, wantErr: `"auto"`},
		{name: "bad row hash bits", env: map[string]string{"STORM_VERIFY_ROW_HASH_BITS": "48"}, wantErr: "verify.row-hash-bits: row hash of 48 bits: want 32 or 64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			fs := commonFlags("node")
			fs.String("node-id", "", "")
			fs.Int("workers", 0, "")
			s, err := parse(fs, append([]string{"--config", path}, c.args...))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := c.check(s); msg != "" {
				t.Fatalf("%s: %+v", msg, s)
			}
			if strings.Contains(fmtSpec(s), "secret") {
				t.Fatal("the password reached the job spec")
			}
		})
	}
}

func fmtSpec(s *settings) string { return string(mustJSON(s.spec())) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// With no import.shard-size anywhere, the plan chooses it.
func TestShardSizeDefaultsToAuto(t *testing.T) {
	path := filepath.Join(t.TempDir(), "storm.toml")
	if err := os.WriteFile(path, []byte("[job]\nid = \"j\"\n[source]\ndir = \"/d\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := parse(commonFlags("node"), []string{"--config", path})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.spec().Import.ShardSize; !got.Auto() {
		t.Fatalf("default import.shard-size %v, want auto", got)
	}
}

// target.host takes one server or several, from the file (a string or a
// list, with target.hosts) or the environment (comma-separated); the spec
// holds them as a sorted set, so that nodes that list them in another order
// write the same spec.
func TestTargetHosts(t *testing.T) {
	cases := []struct {
		name    string
		toml    string
		env     map[string]string
		host    string
		port    int
		hosts   []string
		wantErr string
	}{
		{name: "default", host: "127.0.0.1", port: 3306},
		{name: "one host", toml: `host = "db1"` + "\nport = 4000", host: "db1", port: 4000},
		{name: "one host with its port", toml: `host = "db1:4001"`, host: "db1", port: 4001},
		{name: "a list", toml: `host = ["tidb-b", "tidb-a:4001", "tidb-b"]` + "\nport = 4000", host: "tidb-a", port: 4001,
			hosts: []string{"tidb-a:4001", "tidb-b:4000"}},
		{name: "the list in another order", toml: `host = ["tidb-a:4001", "tidb-b"]` + "\nport = 4000", host: "tidb-a", port: 4001,
			hosts: []string{"tidb-a:4001", "tidb-b:4000"}},
		{name: "host and hosts", toml: `host = "tidb-c"` + "\n" + `hosts = ["tidb-a"]`, host: "tidb-a", port: 3306,
			hosts: []string{"tidb-a:3306", "tidb-c:3306"}},
		{name: "environment", env: map[string]string{"STORM_TARGET_HOST": "h2:4000,h1:4000"}, host: "h1", port: 4000,
			hosts: []string{"h1:4000", "h2:4000"}},
		{name: "bad port", toml: `host = ["a:x", "b"]`, wantErr: `target.host "a:x": bad port`},
		{name: "empty", toml: `host = []`, wantErr: "target.host is empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "storm.toml")
			body := "[job]\nid = \"j\"\n[source]\ndir = \"/d\"\n[target]\n" + c.toml + "\n"
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			for k, v := range c.env {
				t.Setenv(k, v)
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
			got := s.spec().Target
			if got.Host != c.host || got.Port != c.port || strings.Join(got.Hosts, " ") != strings.Join(c.hosts, " ") {
				t.Fatalf("target %+v, want host %s port %d hosts %v", got, c.host, c.port, c.hosts)
			}
		})
	}
}
