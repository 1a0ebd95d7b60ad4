package tikv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/import_sstpb"

	"storm/internal/tikvfake"
)

func TestPrepareDeadPDFailsFast(t *testing.T) {
	refused := tikvfake.DeadAddr(t)
	// Accepts TCP (the kernel does, into the backlog) and never answers.
	silentLis := tikvfake.Listen(t)
	defer silentLis.Close()
	silent := silentLis.Addr().String()

	cases := []struct {
		name    string
		cfg     func(c *cluster) Config
		names   string
		maxTime time.Duration
	}{
		{
			name: "PD gRPC refuses",
			cfg: func(c *cluster) Config {
				return Config{PDAddrs: []string{refused}, PDHTTPAddr: c.HTTP.URL(), ImportMode: true, PauseSchedulers: true}
			},
			names: refused, maxTime: 5 * time.Second,
		},
		{
			name: "PD gRPC silent",
			cfg: func(c *cluster) Config {
				return Config{PDAddrs: []string{silent}, PDHTTPAddr: c.HTTP.URL(), ImportMode: true, Timeout: time.Second}
			},
			names: silent, maxTime: 3 * time.Second,
		},
		{
			name: "PD HTTP refuses",
			cfg: func(c *cluster) Config {
				return Config{PDAddrs: []string{c.PD.URL}, PDHTTPAddr: refused, ImportMode: true, PauseSchedulers: true}
			},
			names: "http://" + refused, maxTime: 2 * time.Second,
		},
		{
			name: "PD HTTP silent",
			cfg: func(c *cluster) Config {
				return Config{PDAddrs: []string{silent}, PauseSchedulers: true, Timeout: time.Second}
			},
			names: "http://" + silent, maxTime: 3 * time.Second,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, []storeSpec{{ID: 1}}, []string{"balance-leader-scheduler"}, nil)
			start := time.Now()
			s, err := Prepare(context.Background(), tc.cfg(c))
			if d := time.Since(start); d > tc.maxTime {
				t.Errorf("took %v, want under %v", d, tc.maxTime)
			}
			mustContain(t, err, tc.names)
			// Nothing changed, so nothing to restore.
			eq(t, "modes", c.modes(), map[uint64][]import_sstpb.SwitchMode{})
			paused, _, _ := c.HTTP.State()
			eq(t, "paused", paused, map[string]int{})
			if len(s.Stores)+len(s.Schedulers)+len(s.Config) != 0 {
				t.Errorf("saved %+v after failing before any change", s)
			}
		})
	}
}

func TestStoreDown(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, []storeSpec{{ID: 1}, {ID: 2, Down: true}, {ID: 3}},
		[]string{"balance-leader-scheduler"}, nil)
	cfg := c.config()
	s, err := Prepare(ctx, cfg)
	down := s.Stores[1]
	if down.ID != 2 {
		t.Fatalf("saved stores %v, want the down store 2 among them", s.Stores)
	}
	mustContain(t, err, "store 2", down.Address)
	if strings.Contains(err.Error(), "store 1") || strings.Contains(err.Error(), "store 3") {
		t.Errorf("error %q blames a live store", err)
	}
	eq(t, "modes after Prepare", c.modes(), map[uint64][]import_sstpb.SwitchMode{1: {imp}, 3: {imp}})
	// Prepare stops before touching PD's scheduling when a store fails.
	paused, _, _ := c.HTTP.State()
	eq(t, "paused", paused, map[string]int{})

	err = Restore(ctx, cfg, s)
	mustContain(t, err, "store 2", down.Address, "Normal")
	eq(t, "modes after Restore", c.modes(), map[uint64][]import_sstpb.SwitchMode{1: {imp, nrm}, 3: {imp, nrm}})
}

func TestRestoreBestEffort(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, []storeSpec{{ID: 1}, {ID: 2}},
		[]string{"balance-leader-scheduler", "balance-region-scheduler"}, nil)
	cfg := c.config()
	s, err := Prepare(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.HTTP.FailPost("balance-leader-scheduler", true)
	c.HTTP.FailPost("config", true)

	err = Restore(ctx, cfg, s)
	mustContain(t, err, "resume scheduler balance-leader-scheduler", c.HTTP.URL(),
		"max-merge-region-keys,max-merge-region-size")
	if strings.Contains(err.Error(), "balance-region-scheduler") {
		t.Errorf("error %q blames a scheduler that was resumed", err)
	}
	eq(t, "modes", c.modes(), map[uint64][]import_sstpb.SwitchMode{1: {imp, nrm}, 2: {imp, nrm}})
	paused, _, _ := c.HTTP.State()
	eq(t, "paused", paused, map[string]int{"balance-leader-scheduler": 90, "balance-region-scheduler": 0})

	// PD recovers; running Restore again finishes the job.
	c.HTTP.FailPost("balance-leader-scheduler", false)
	c.HTTP.FailPost("config", false)
	if err := Restore(ctx, cfg, s); err != nil {
		t.Fatal(err)
	}
	paused, conf, _ := c.HTTP.State()
	eq(t, "paused", paused, map[string]int{"balance-leader-scheduler": 0, "balance-region-scheduler": 0})
	eq(t, "config", normalise(conf), normalise(tikvfake.DefaultSchedule()))
}

func TestSchedulerRemovedMeanwhile(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, nil, []string{"balance-leader-scheduler", "balance-region-scheduler"}, nil)
	cfg := c.config()
	cfg.ImportMode = false
	s, err := Prepare(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.HTTP.SetSchedulers([]string{"balance-region-scheduler"})
	if err := Keep(ctx, cfg, s); err != nil {
		t.Errorf("Keep: %v", err)
	}
	if err := Restore(ctx, cfg, s); err != nil {
		t.Errorf("Restore: %v", err)
	}
}

func TestPrepareFailsPausing(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, []storeSpec{{ID: 1}},
		[]string{"balance-leader-scheduler", "balance-region-scheduler"}, nil)
	c.HTTP.FailPost("balance-leader-scheduler", true)
	cfg := c.config()
	s, err := Prepare(ctx, cfg)
	mustContain(t, err, "pause scheduler balance-leader-scheduler", c.HTTP.URL())
	// All that may have changed is saved, the failed pause included.
	eq(t, "schedulers", s.Schedulers, []string{"balance-leader-scheduler", "balance-region-scheduler"})
	eq(t, "stores", s.Stores, []Store{{ID: 1, Address: c.Stores[1].Addr}})
	if len(s.Config) != 2 {
		t.Errorf("config saved %v", s.Config)
	}
}

func TestHTTPTriesNextPDOnlyWhenUnreachable(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, nil, []string{"balance-leader-scheduler"}, nil)
	dead := tikvfake.DeadAddr(t)
	cfg := Config{PDAddrs: []string{dead, c.HTTP.URL()}, PauseSchedulers: true, PauseTTL: time.Minute}
	s, err := Prepare(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "schedulers", s.Schedulers, []string{"balance-leader-scheduler"})

	// A PD that answers with an error has decided: the next one is not asked.
	other := tikvfake.StartPDHTTP(t, []string{"balance-leader-scheduler"}, nil, tikvfake.DefaultSchedule())
	c.HTTP.FailPost("balance-leader-scheduler", true)
	cfg.PDAddrs = []string{c.HTTP.URL(), other.URL()}
	err = Keep(ctx, cfg, s)
	mustContain(t, err, c.HTTP.URL(), "HTTP 500")
	if _, _, reqs := other.State(); len(reqs) != 0 {
		t.Errorf("second PD asked %q", reqs)
	}
}
