package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"storm/internal/testcerts"
)

// loadConfig parses a storm.toml the way `storm node` does.
func loadConfig(t *testing.T, toml string) (*settings, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "storm.toml")
	if err := os.WriteFile(path, []byte("[job]\nid = \"j\"\n[source]\ndir = \"/data\"\n"+toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return parse(commonFlags("node"), []string{"--config", path})
}

func writePW(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// Passwords come from the config, the environment or a file (its trailing
// newline trimmed, a warning when others can read it), never from two of
// them; none reaches the spec.
func TestPasswordSources(t *testing.T) {
	private := writePW(t, "file-Pw-1\n", 0o600)
	s, err := loadConfig(t, "[target]\npassword-file = \""+private+"\"\n[etcd]\nusername = \"storm\"\npassword-file = \""+private+"\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if s.Target.Password != "file-Pw-1" || s.Etcd.Password != "file-Pw-1" || len(s.securityWarnings()) != 0 {
		t.Fatalf("passwords %q %q, warnings %v", s.Target.Password, s.Etcd.Password, s.securityWarnings())
	}
	if strings.Contains(fmtSpec(s), "file-Pw-1") || strings.Contains(strings.ToLower(fmtSpec(s)), "password") {
		t.Fatalf("a password reached the spec: %s", fmtSpec(s))
	}
	if nc := s.nodeConfig(); nc.Password != "file-Pw-1" || nc.Security.EtcdPassword != "file-Pw-1" || nc.Security.EtcdUser != "storm" {
		t.Fatal("the node config lacks the passwords")
	}

	shared := writePW(t, "file-Pw-2\r\n", 0o644)
	if s, err = loadConfig(t, "[target]\npassword-file = \""+shared+"\"\n"); err != nil {
		t.Fatal(err)
	}
	if w := s.securityWarnings(); s.Target.Password != "file-Pw-2" || len(w) != 1 || !strings.Contains(w[0], "readable by group or others") {
		t.Fatalf("password %q, warnings %v", s.Target.Password, w)
	}

	t.Setenv("STORM_ETCD_PASSWORD", "env-Pw-3")
	if s, err = loadConfig(t, "[etcd]\nusername = \"storm\"\n"); err != nil || s.Etcd.Password != "env-Pw-3" {
		t.Fatalf("STORM_ETCD_PASSWORD: %v %+v", err, s)
	}
	t.Setenv("STORM_ETCD_PASSWORD", "") // empty is unset
	t.Setenv("STORM_TARGET_PASSWORD", "env-Pw-4")
	for name, c := range map[string]struct{ toml, want string }{
		"env and file":    {"[target]\npassword-file = \"" + private + "\"\n", "target.password (or STORM_TARGET_PASSWORD) and target.password-file are both set"},
		"missing file":    {"[etcd]\npassword-file = \"/nonexistent/pw\"\n", "etcd.password-file: stat /nonexistent/pw"},
		"empty file":      {"[etcd]\npassword-file = \"" + writePW(t, "\n", 0o600) + "\"\n", "is empty"},
		"user, no secret": {"[etcd]\nusername = \"u\"\n", "etcd.username and etcd.password"},
	} {
		_, err := loadConfig(t, c.toml)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "env-Pw") || strings.Contains(err.Error(), "file-Pw")) {
			t.Errorf("%s: the error shows a password: %v", name, err)
		}
	}
}

// TLS settings are per node: two nodes whose certificate paths differ
// have the same spec. Bad TLS settings are config errors that name the key.
func TestTLSSettings(t *testing.T) {
	certs := testcerts.New(t)
	all := `
[etcd]
endpoints = ["https://127.0.0.1:2379"]
[etcd.tls]
ca = "` + certs.CA + `"
cert = "` + certs.ClientCert + `"
key = "` + certs.ClientKey + `"
[target.tls]
mode = "verify-identity"
ca = "` + certs.CA + `"
[tidb.tls]
ca = "` + certs.CA + `"
cert = "` + certs.ClientCert + `"
key = "` + certs.ClientKey + `"
[node.status-tls]
cert = "` + certs.ServerCert + `"
key = "` + certs.ServerKey + `"
`
	with, err := loadConfig(t, all)
	if err != nil {
		t.Fatal(err)
	}
	sec := with.nodeConfig().Security
	if sec.Etcd.Cert != certs.ClientCert || sec.TargetMode != "verify-identity" || sec.Target.CA != certs.CA ||
		sec.TiDB.Key != certs.ClientKey || sec.Status.Cert != certs.ServerCert {
		t.Fatalf("security %+v", sec)
	}
	without, err := loadConfig(t, "[etcd]\nendpoints = [\"https://127.0.0.1:2379\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	if d := with.spec().Diff(without.spec()); len(d) > 0 {
		t.Fatalf("TLS settings reached the spec: %v", d)
	}
	if without.Target.TLS.Mode != "preferred" {
		t.Errorf("target.tls.mode defaults to %q", without.Target.TLS.Mode)
	}

	for name, c := range map[string]struct{ toml, want string }{
		"bad mode":         {"[target.tls]\nmode = \"sometimes\"\n", `target.tls.mode "sometimes"`},
		"cert without key": {"[etcd.tls]\ncert = \"" + certs.ClientCert + "\"\n", "etcd.tls: cert and key go together"},
		"tidb CA only":     {"[tidb.tls]\nca = \"" + certs.CA + "\"\n", "tidb.tls needs ca, cert and key"},
		"not a CA":         {"[target.tls]\nca = \"" + certs.ClientKey + "\"\n", "target.tls.ca " + certs.ClientKey + ": no PEM certificate"},
		"status no key":    {"[node.status-tls]\nca = \"" + certs.CA + "\"\n", "node.status-tls: serving TLS needs cert and key"},
	} {
		if _, err := loadConfig(t, c.toml); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
	// A client subcommand needs etcd's settings only: a node's bad target
	// password file is not its business.
	path := filepath.Join(t.TempDir(), "storm.toml")
	if err := os.WriteFile(path, []byte("[job]\nid = \"j\"\n[target]\npassword-file = \"/nonexistent\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := parseJobArgs(commonFlags("status"), []string{"--config", path}, true); err != nil {
		t.Errorf("storm status refused a node-only problem: %v", err)
	}
}
