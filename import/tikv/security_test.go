package tikv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/import_sstpb"

	"storm/internal/testcerts"
	"storm/internal/tikvfake"
	"storm/internal/tlsfiles"
)

// With tidb.tls, PD's client, the stores' SwitchMode and PD's HTTP API (on
// PD's own port, https:// derived from the bare PD address) all speak TLS
// with the client certificate; a cluster that requires client certificates
// serves a full Prepare and Restore. Without the files, or with a CA that
// did not sign the cluster's certificates, Prepare fails naming PD and
// changes nothing.
func TestTLSCluster(t *testing.T) {
	certs := testcerts.New(t)
	c := tikvfake.StartCluster(t, tikvfake.ClusterConfig{
		Stores:     []tikvfake.StoreSpec{{ID: 1}, {ID: 2}},
		Schedulers: []string{"balance-leader-scheduler", "balance-region-scheduler"},
		SharedPort: true,
		TLS:        certs.ServerTLS(t),
	})
	if !strings.HasPrefix(c.PD.URL, "https://") {
		t.Fatalf("PD url %s", c.PD.URL)
	}
	bare := strings.TrimPrefix(c.PD.URL, "https://")
	cfg := Config{PDAddrs: []string{bare}, ImportMode: true, PauseSchedulers: true, PauseTTL: time.Minute, Timeout: 2 * time.Second,
		TLS: tlsfiles.Files{CA: certs.CA, Cert: certs.ClientCert, Key: certs.ClientKey}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for name, bad := range map[string]tlsfiles.Files{
		"no tidb.tls": {},
		"another CA":  {CA: testcerts.New(t).CA, Cert: certs.ClientCert, Key: certs.ClientKey},
	} {
		bc := cfg
		bc.TLS = bad
		if _, err := Prepare(ctx, bc); err == nil || !strings.Contains(err.Error(), bare) {
			t.Errorf("%s: Prepare error %v does not name PD %s", name, err, bare)
		}
	}
	if got := c.Modes(); len(got) != 0 {
		t.Fatalf("stores switched by a Prepare that failed: %v", got)
	}
	if paused, _, _ := c.HTTP.State(); len(paused) != 0 {
		t.Fatalf("schedulers paused by a Prepare that failed: %v", paused)
	}

	s, err := Prepare(ctx, cfg)
	if err != nil {
		t.Fatalf("Prepare over TLS: %v", err)
	}
	if len(s.Stores) != 2 || len(s.Schedulers) != 2 {
		t.Fatalf("saved %+v", s)
	}
	if err := Restore(ctx, cfg, s); err != nil {
		t.Fatalf("Restore over TLS: %v", err)
	}
	eq(t, "modes", c.Modes(), map[uint64][]import_sstpb.SwitchMode{1: {imp, nrm}, 2: {imp, nrm}})
	if c.PD.Called()["GetAllStores"] == 0 {
		t.Error("PD's gRPC API was not asked for the stores")
	}

	if err := CheckTLS(tlsfiles.Files{CA: certs.CA}); err == nil {
		t.Error("tidb.tls with a CA alone was accepted")
	}
}
