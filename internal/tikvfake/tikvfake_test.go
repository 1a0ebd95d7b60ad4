package tikvfake_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/import_sstpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/log"
	"go.uber.org/zap/zapcore"

	"storm/import/tikv"
	"storm/internal/tikvfake"
)

func TestMain(m *testing.M) {
	log.SetLevel(zapcore.ErrorLevel)
	os.Exit(m.Run())
}

// On a shared port, the PD address alone reaches PD's gRPC API (the PD
// client lists the stores) and its HTTP API, as with a real PD; the records
// of all fakes are in one order.
func TestSharedPortServesGRPCAndHTTP(t *testing.T) {
	c := tikvfake.StartCluster(t, tikvfake.ClusterConfig{
		Stores:     []tikvfake.StoreSpec{{ID: 1}, {ID: 2}, {ID: 3, State: metapb.StoreState_Tombstone}},
		Schedulers: []string{"balance-leader-scheduler", "evict-slow-store-scheduler"},
		SharedPort: true,
	})
	if c.HTTP.URL() != c.PD.URL {
		t.Fatalf("HTTP API at %s, PD at %s", c.HTTP.URL(), c.PD.URL)
	}
	cfg := tikv.Config{PDAddrs: []string{c.PD.URL}, ImportMode: true, PauseSchedulers: true, PauseTTL: time.Minute}
	s, err := tikv.Prepare(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Stores) != 2 || !slices.Equal(s.Schedulers, []string{"balance-leader-scheduler"}) {
		t.Fatalf("saved %+v", s)
	}
	if got := c.PD.Called()["GetAllStores"]; got != 1 {
		t.Errorf("GetAllStores called %d times", got)
	}
	if got := c.PD.ExcludeAsked(); !slices.Equal(got, []bool{true}) {
		t.Errorf("exclude tombstones asked %v", got)
	}
	reqs := c.HTTP.Requests()
	var strs []string
	for i, r := range reqs {
		strs = append(strs, r.String())
		if i > 0 && r.Seq <= reqs[i-1].Seq {
			t.Errorf("request %d has seq %d after %d", i, r.Seq, reqs[i-1].Seq)
		}
		if !strings.HasPrefix(r.UserAgent, "Go-http-client/") {
			t.Errorf("user agent %q", r.UserAgent)
		}
	}
	want := []string{
		"GET /pd/api/v1/schedulers",
		"GET /pd/api/v1/schedulers?status=paused",
		"GET /pd/api/v1/config/schedule",
		`POST /pd/api/v1/schedulers/balance-leader-scheduler {"delay":60}`,
		`POST /pd/api/v1/config/schedule {"max-merge-region-keys":0,"max-merge-region-size":0}`,
	}
	if !slices.Equal(strs, want) {
		t.Errorf("requests:\n got  %q\n want %q", strs, want)
	}
	// Prepare switches the stores after reading PD and before pausing.
	for _, id := range []uint64{1, 2} {
		sw := c.Stores[id].Switches()
		if len(sw) != 1 || sw[0].Mode != import_sstpb.SwitchMode_Import || sw[0].Seq < reqs[2].Seq || sw[0].Seq > reqs[3].Seq {
			t.Errorf("store %d switches %+v, requests %+v", id, sw, reqs)
		}
	}
	if got := c.Stores[3].Modes(); len(got) != 0 {
		t.Errorf("tombstone switched: %v", got)
	}
}

// A config POST is stored as sent: a uint64 comes back from GET exactly.
func TestConfigKeptExactly(t *testing.T) {
	f := tikvfake.StartPDHTTP(t, nil, nil, tikvfake.DefaultSchedule())
	post, err := http.Post(f.URL()+"/pd/api/v1/config/schedule", "application/json",
		strings.NewReader(`{"max-merge-region-keys":18446744073709551615}`))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	resp, err := http.Get(f.URL() + "/pd/api/v1/config/schedule")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `"max-merge-region-keys":18446744073709551615`) {
		t.Errorf("config %s", body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || len(m) != len(tikvfake.DefaultSchedule()) {
		t.Errorf("config %s: %v", body, err)
	}
}

// Injected failures answer 500 and are recorded all the same; the fakes
// take concurrent requests.
func TestFailuresAndConcurrency(t *testing.T) {
	f := tikvfake.StartPDHTTP(t, []string{"balance-leader-scheduler", "balance-region-scheduler"}, nil, nil)
	f.FailWhen(func(r tikvfake.Request) bool { return strings.HasSuffix(r.URI, "/balance-region-scheduler") })
	post := func(name string) int {
		resp, err := http.Post(f.URL()+"/pd/api/v1/schedulers/"+name, "application/json", strings.NewReader(`{"delay":5}`))
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if code := post("balance-leader-scheduler"); code != http.StatusOK {
				t.Errorf("pause: HTTP %d", code)
			}
		})
	}
	wg.Wait()
	if code := post("balance-region-scheduler"); code != http.StatusInternalServerError {
		t.Errorf("injected failure answered %d", code)
	}
	f.FailWhen(nil)
	f.SetDown(true)
	if code := post("balance-leader-scheduler"); code != http.StatusServiceUnavailable {
		t.Errorf("down PD answered %d", code)
	}
	paused, _, reqs := f.State()
	if len(reqs) != 22 || paused["balance-leader-scheduler"] != 5 || paused["balance-region-scheduler"] != 0 {
		t.Errorf("paused %v after %d requests", paused, len(reqs))
	}
}
