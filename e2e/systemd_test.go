package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const unitPath = "../scripts/systemd/storm@.service"

// systemd-analyze verify accepts the unit (Debian's systemd package;
// scripts/setup.sh installs it). It checks that ExecStart is executable, so
// the check runs on a copy that starts the storm this test built.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze not found: run scripts/setup.sh (it installs Debian's systemd package)")
	}
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "/usr/local/bin/storm ") {
		t.Fatal("the unit no longer starts /usr/local/bin/storm; update this test")
	}
	dir := t.TempDir()
	copyPath := filepath.Join(dir, "storm@.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/storm ", stormBin+" ")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"storm@.service", "storm@demo.service"} {
		out, err := exec.Command(analyze, "verify", filepath.Join(dir, name)).CombinedOutput()
		// Unknown keys and bad values are only warnings: any output fails.
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
	}
}

// The unit restarts a node that lost coordination (exit 3), and neither a
// finished job (0), a failed one (1) nor a config error (2); it reads the
// instance's config.
func TestSystemdUnitRestartPolicy(t *testing.T) {
	f, err := os.Open(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("unit line %q", line)
			}
			keys[section+"."+strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	for _, tc := range []struct{ key, want string }{
		{"Service.Restart", "on-failure"},
		{"Service.RestartPreventExitStatus", "0 1 2"},
		{"Service.ExecStart", "/usr/local/bin/storm node --config /etc/storm/%i.toml"},
		{"Install.WantedBy", "multi-user.target"},
	} {
		if got := keys[tc.key]; got != tc.want {
			t.Errorf("%s = %q, want %q", tc.key, got, tc.want)
		}
	}
	for _, code := range strings.Fields(keys["Service.RestartPreventExitStatus"]) {
		if code == "3" {
			t.Error("exit 3 (lost coordination) must be restarted")
		}
	}
}
