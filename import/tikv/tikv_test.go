package tikv

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/import_sstpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/log"
	"go.uber.org/zap/zapcore"

	"storm/internal/tikvfake"
)

func TestMain(m *testing.M) {
	// The PD client logs every connection at INFO; failures show as errors.
	log.SetLevel(zapcore.ErrorLevel)
	os.Exit(m.Run())
}

var (
	imp = import_sstpb.SwitchMode_Import
	nrm = import_sstpb.SwitchMode_Normal
)

// cluster is a fake PD (gRPC and HTTP, on ports of their own) with fake
// stores.
type cluster struct{ *tikvfake.Cluster }

type storeSpec = tikvfake.StoreSpec

func startCluster(t *testing.T, specs []storeSpec, schedulers []string, paused map[string]int) *cluster {
	t.Helper()
	return &cluster{tikvfake.StartCluster(t, tikvfake.ClusterConfig{Stores: specs, Schedulers: schedulers, Paused: paused})}
}

func (c *cluster) config() Config {
	return Config{
		PDAddrs:         []string{c.PD.URL},
		PDHTTPAddr:      c.HTTP.URL(),
		ImportMode:      true,
		PauseSchedulers: true,
		PauseTTL:        90 * time.Second,
	}
}

// modes is what each fake store received, by store ID.
func (c *cluster) modes() map[uint64][]import_sstpb.SwitchMode { return c.Modes() }

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %#v\n want %#v", what, got, want)
	}
}

func TestPrepareKeepRestore(t *testing.T) {
	mixed := []storeSpec{
		{ID: 1},
		{ID: 2},
		{ID: 3, State: metapb.StoreState_Tombstone},
		{ID: 4, Labels: tikvfake.TiFlash()},
		{ID: 5, State: metapb.StoreState_Offline},
		{ID: 6, Labels: []*metapb.StoreLabel{{Key: "engine", Value: "tikv"}, {Key: "zone", Value: "z1"}}},
	}
	allSched := []string{
		"balance-hot-region-scheduler", "balance-leader-scheduler",
		"balance-region-scheduler", "evict-leader-scheduler", "shuffle-leader-scheduler",
	}
	cases := []struct {
		name          string
		specs         []storeSpec
		schedulers    []string
		pausedBefore  map[string]int
		ignoreExclude bool
		importMode    bool
		pause         bool
		wantStores    []uint64
		wantPaused    []string
	}{
		{
			name: "all", specs: mixed, schedulers: allSched, importMode: true, pause: true,
			wantStores: []uint64{1, 2, 6},
			wantPaused: []string{"balance-hot-region-scheduler", "balance-leader-scheduler", "balance-region-scheduler"},
		},
		{
			name: "PD returns tombstones anyway", specs: mixed, schedulers: allSched,
			ignoreExclude: true, importMode: true, pause: true,
			wantStores: []uint64{1, 2, 6},
			wantPaused: []string{"balance-hot-region-scheduler", "balance-leader-scheduler", "balance-region-scheduler"},
		},
		{
			name: "one paused by someone else, one absent", specs: mixed,
			schedulers:   []string{"balance-leader-scheduler", "balance-region-scheduler"},
			pausedBefore: map[string]int{"balance-region-scheduler": 600},
			importMode:   true, pause: true,
			wantStores: []uint64{1, 2, 6},
			wantPaused: []string{"balance-leader-scheduler"},
		},
		{
			name: "import mode only", specs: mixed, schedulers: allSched, importMode: true,
			wantStores: []uint64{1, 2, 6},
		},
		{
			name: "schedulers only", specs: mixed, schedulers: allSched, pause: true,
			wantPaused: []string{"balance-hot-region-scheduler", "balance-leader-scheduler", "balance-region-scheduler"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := startCluster(t, tc.specs, tc.schedulers, tc.pausedBefore)
			c.PD.SetIgnoreExclude(tc.ignoreExclude)
			cfg := c.config()
			cfg.ImportMode, cfg.PauseSchedulers = tc.importMode, tc.pause
			pausedBefore, configBefore, _ := c.HTTP.State()

			s, err := Prepare(ctx, cfg)
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			var ids []uint64
			for _, st := range s.Stores {
				ids = append(ids, st.ID)
				if st.Address != c.Stores[st.ID].Addr {
					t.Errorf("store %d address %q, want %q", st.ID, st.Address, c.Stores[st.ID].Addr)
				}
			}
			eq(t, "saved stores", ids, tc.wantStores)
			eq(t, "saved schedulers", s.Schedulers, tc.wantPaused)
			wantModes := map[uint64][]import_sstpb.SwitchMode{}
			for _, id := range tc.wantStores {
				wantModes[id] = []import_sstpb.SwitchMode{imp}
			}
			eq(t, "modes after Prepare", c.modes(), wantModes)
			if tc.importMode {
				if got := c.PD.Called()["GetAllStores"]; got != 1 {
					t.Errorf("GetAllStores called %d times", got)
				}
				eq(t, "ExcludeTombstoneStores asked", c.PD.ExcludeAsked(), []bool{true})
			} else if n := len(c.PD.Called()); n != 0 {
				t.Errorf("PD gRPC used without import mode: %v", c.PD.Called())
			}

			paused, conf, reqs := c.HTTP.State()
			wantPausedState := maps.Clone(pausedBefore)
			for _, n := range tc.wantPaused {
				wantPausedState[n] = 90
			}
			eq(t, "paused after Prepare", paused, wantPausedState)
			if tc.pause {
				eq(t, "saved config", s.Config, map[string]any{
					"max-merge-region-size": json.Number("20"),
					"max-merge-region-keys": json.Number("200000"),
				})
				want := maps.Clone(configBefore)
				want["max-merge-region-size"], want["max-merge-region-keys"] = 0, 0
				eq(t, "config after Prepare", normalise(conf), normalise(want))
			} else {
				if len(reqs) != 0 {
					t.Errorf("PD HTTP used without PauseSchedulers: %q", reqs)
				}
				if s.Config != nil {
					t.Errorf("config saved without PauseSchedulers: %v", s.Config)
				}
			}

			// Keep re-asserts import mode and the pause, and nothing else.
			c.HTTP.ResetRequests()
			if err := Keep(ctx, cfg, s); err != nil {
				t.Fatalf("Keep: %v", err)
			}
			for _, id := range tc.wantStores {
				wantModes[id] = append(wantModes[id], imp)
			}
			eq(t, "modes after Keep", c.modes(), wantModes)
			_, _, reqs = c.HTTP.State()
			var wantReqs []string
			for _, n := range tc.wantPaused {
				wantReqs = append(wantReqs, "POST /pd/api/v1/schedulers/"+n+` {"delay":90}`)
			}
			eq(t, "requests in Keep", reqs, wantReqs)

			// Restore, twice: the second run finds everything restored and
			// leaves it so.
			for i := range 2 {
				if err := Restore(ctx, cfg, s); err != nil {
					t.Fatalf("Restore #%d: %v", i+1, err)
				}
				for _, id := range tc.wantStores {
					wantModes[id] = append(wantModes[id], nrm)
				}
				eq(t, "modes after Restore", c.modes(), wantModes)
				paused, conf, _ = c.HTTP.State()
				want := maps.Clone(pausedBefore)
				for _, n := range tc.wantPaused {
					want[n] = 0
				}
				eq(t, "paused after Restore", paused, want)
				eq(t, "config after Restore", normalise(conf), normalise(configBefore))
			}
		})
	}
}

// normalise renders a config as JSON text, where 20 and json.Number("20")
// and float64(20) are all the same thing PD would see.
func normalise(m map[string]any) string {
	b, _ := json.Marshal(m)
	return string(b)
}

func TestRestoreSendsSavedConfigVerbatim(t *testing.T) {
	c := startCluster(t, nil, nil, nil)
	s := Saved{Config: map[string]any{"max-merge-region-keys": json.Number("18446744073709551615")}}
	// Through etcd and back: the uint64 must not go through a float64.
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Saved
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	cfg := c.config()
	if err := Restore(context.Background(), cfg, back); err != nil {
		t.Fatal(err)
	}
	_, _, reqs := c.HTTP.State()
	eq(t, "requests", reqs, []string{`POST /pd/api/v1/config/schedule {"max-merge-region-keys":18446744073709551615}`})
}

func TestSavedJSONRoundTrip(t *testing.T) {
	cases := []Saved{
		{},
		{At: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)},
		{
			Stores:     []Store{{ID: 1, Address: "10.0.0.1:20160"}, {ID: 18446744073709551615, Address: "tikv-2:20160"}},
			Schedulers: []string{"balance-leader-scheduler", "balance-region-scheduler"},
			Config: map[string]any{
				"max-merge-region-size": json.Number("20"),
				"max-merge-region-keys": json.Number("200000"),
			},
			At: time.Now().UTC(),
		},
	}
	for _, s := range cases {
		data, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back Saved
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if !back.At.Equal(s.At) {
			t.Errorf("At %v, want %v", back.At, s.At)
		}
		back.At = s.At
		eq(t, "round trip of "+string(data), back, s)
	}
}

func TestKeepInterval(t *testing.T) {
	cases := []struct {
		ttl, want time.Duration
	}{
		{0, 100 * time.Second},
		{3 * time.Minute, time.Minute},
		{time.Hour, 200 * time.Second}, // TiKV's 10-minute import-mode timeout rules
		{30 * time.Second, 10 * time.Second},
	}
	for _, tc := range cases {
		if got := (Config{PauseTTL: tc.ttl}).KeepInterval(); got != tc.want {
			t.Errorf("KeepInterval(PauseTTL %v) = %v, want %v", tc.ttl, got, tc.want)
		}
	}
}

func TestPauseSeconds(t *testing.T) {
	for ttl, want := range map[time.Duration]int{0: 300, 90 * time.Second: 90, 1500 * time.Millisecond: 2} {
		if got := (Config{PauseTTL: ttl}).pauseSeconds(); got != want {
			t.Errorf("pauseSeconds(%v) = %d, want %d", ttl, got, want)
		}
	}
}

func TestHTTPBases(t *testing.T) {
	cases := []struct {
		cfg  Config
		want []string
	}{
		{Config{PDAddrs: []string{"pd0:2379", "http://pd1:2379/", " https://pd2:2379 "}},
			[]string{"http://pd0:2379", "http://pd1:2379", "https://pd2:2379"}},
		{Config{PDAddrs: []string{"pd0:2379"}, PDHTTPAddr: "https://api:8443"}, []string{"https://api:8443"}},
		{Config{}, []string{}},
	}
	for _, tc := range cases {
		eq(t, "httpBases", tc.cfg.httpBases(), tc.want)
	}
}

func mustContain(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one naming %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name %q", err, p)
		}
	}
}
