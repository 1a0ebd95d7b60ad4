package tikvfake

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// PDHTTP is PD's HTTP API as far as schedulers and schedule config go.
type PDHTTP struct {
	mu         sync.Mutex
	url        string
	schedulers []string
	paused     map[string]int // scheduler → delay last set
	config     map[string]any
	requests   []Request
	failPost   map[string]bool
	failWhen   func(Request) bool
	down       bool
}

// Request is one request the API received.
type Request struct {
	Seq       uint64
	At        time.Time
	Method    string
	URI       string // path and query
	Body      string
	UserAgent string
}

// String is "METHOD uri body", without the body when there is none.
func (r Request) String() string {
	return strings.TrimSpace(r.Method + " " + r.URI + " " + r.Body)
}

// NewPDHTTP is an API with these schedulers, of which paused are paused
// (name → delay), and this schedule config. Serve it with StartPDHTTP, or
// on PD's own port with StartPD.
func NewPDHTTP(schedulers []string, paused map[string]int, config map[string]any) *PDHTTP {
	f := &PDHTTP{schedulers: schedulers, paused: paused, config: config, failPost: map[string]bool{}}
	if f.paused == nil {
		f.paused = map[string]int{}
	}
	if f.config == nil {
		f.config = map[string]any{}
	}
	return f
}

// StartPDHTTP serves a new API on its own loopback port until the test ends.
func StartPDHTTP(t testing.TB, schedulers []string, paused map[string]int, config map[string]any) *PDHTTP {
	t.Helper()
	return startPDHTTP(t, schedulers, paused, config, nil)
}

// startPDHTTP serves over TLS with tc (https://) unless it is nil.
func startPDHTTP(t testing.TB, schedulers []string, paused map[string]int, config map[string]any, tc *tls.Config) *PDHTTP {
	t.Helper()
	f := NewPDHTTP(schedulers, paused, config)
	srv := httptest.NewUnstartedServer(f)
	if tc != nil {
		srv.TLS = tc.Clone()
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	f.setURL(srv.URL)
	return f
}

func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
}

func (f *PDHTTP) setURL(u string) {
	f.mu.Lock()
	f.url = u
	f.mu.Unlock()
}

// URL is where the API is served: http://127.0.0.1:<port>.
func (f *PDHTTP) URL() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.url
}

func (f *PDHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	req := Request{Seq: nextSeq(), At: time.Now(), Method: r.Method, URI: r.URL.RequestURI(),
		Body: strings.TrimSpace(string(body)), UserAgent: r.UserAgent()}
	f.requests = append(f.requests, req)
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	if f.down {
		reply(http.StatusServiceUnavailable, "injected: PD is down")
		return
	}
	if f.failWhen != nil && f.failWhen(req) {
		reply(http.StatusInternalServerError, "injected failure")
		return
	}
	const sched = "/pd/api/v1/schedulers"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == sched:
		if r.URL.Query().Get("status") == "paused" {
			var out []string
			for _, s := range f.schedulers {
				if f.paused[s] > 0 {
					out = append(out, s)
				}
			}
			reply(http.StatusOK, out)
			return
		}
		reply(http.StatusOK, f.schedulers)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, sched+"/"):
		name := strings.TrimPrefix(r.URL.Path, sched+"/")
		if f.failPost[name] {
			reply(http.StatusInternalServerError, "injected failure")
			return
		}
		var in map[string]int
		if err := json.Unmarshal(body, &in); err != nil {
			reply(http.StatusBadRequest, err.Error())
			return
		}
		if _, ok := in["delay"]; !ok {
			reply(http.StatusBadRequest, "missing pause time")
			return
		}
		if !slices.Contains(f.schedulers, name) {
			reply(http.StatusInternalServerError, "[PD:scheduler:ErrSchedulerNotFound]scheduler not found")
			return
		}
		f.paused[name] = in["delay"]
		reply(http.StatusOK, "Pause or resume the scheduler successfully.")
	case r.URL.Path == "/pd/api/v1/config/schedule" && r.Method == http.MethodGet:
		reply(http.StatusOK, f.config)
	case r.URL.Path == "/pd/api/v1/config/schedule" && r.Method == http.MethodPost:
		if f.failPost["config"] {
			reply(http.StatusInternalServerError, "injected failure")
			return
		}
		var in map[string]any
		if err := json.Unmarshal(body, &in); err != nil {
			reply(http.StatusBadRequest, err.Error())
			return
		}
		for k := range in {
			if _, ok := f.config[k]; !ok {
				reply(http.StatusBadRequest, "config item "+k+" not found")
				return
			}
		}
		// Stored as sent, so that a later GET returns exactly it.
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		var exact map[string]any
		_ = dec.Decode(&exact)
		maps.Copy(f.config, exact)
		reply(http.StatusOK, "The config is updated.")
	default:
		reply(http.StatusNotFound, "no such API")
	}
}

// State is what the API holds now: the delay each scheduler was last paused
// for (0: resumed), the schedule config, and every request so far as
// "METHOD uri body".
func (f *PDHTTP) State() (paused map[string]int, config map[string]any, requests []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.requests {
		requests = append(requests, r.String())
	}
	return maps.Clone(f.paused), maps.Clone(f.config), requests
}

// Requests are the requests received, in order.
func (f *PDHTTP) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// ResetRequests forgets the requests received so far.
func (f *PDHTTP) ResetRequests() {
	f.mu.Lock()
	f.requests = nil
	f.mu.Unlock()
}

// FailPost makes POSTs for a scheduler (by name), or for the schedule config
// ("config"), answer 500 until set back to false.
func (f *PDHTTP) FailPost(name string, fail bool) {
	f.mu.Lock()
	f.failPost[name] = fail
	f.mu.Unlock()
}

// FailWhen makes every request for which fail returns true answer 500;
// nil stops it. fail runs with the API's lock held.
func (f *PDHTTP) FailWhen(fail func(Request) bool) {
	f.mu.Lock()
	f.failWhen = fail
	f.mu.Unlock()
}

// SetDown makes every request answer 503 (recorded all the same) while down.
func (f *PDHTTP) SetDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// SetSchedulers replaces the schedulers PD has, as if an operator added or
// removed some.
func (f *PDHTTP) SetSchedulers(names []string) {
	f.mu.Lock()
	f.schedulers = slices.Clone(names)
	f.mu.Unlock()
}
