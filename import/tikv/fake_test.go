package tikv

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/import_sstpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	"google.golang.org/grpc"
)

const fakeClusterID = 7

// fakePD answers the PD gRPC calls the PD client makes, and records every
// method called, implemented or not, so that a test can see what a real PD
// would have been asked.
type fakePD struct {
	pdpb.UnimplementedPDServer
	url string
	// ignoreExclude makes GetAllStores return tombstones even when asked
	// not to, as a PD might.
	ignoreExclude bool

	mu           sync.Mutex
	stores       []*metapb.Store
	calls        map[string]int
	excludeAsked []bool
}

func startFakePD(t *testing.T, stores []*metapb.Store) *fakePD {
	t.Helper()
	f := &fakePD{stores: stores, calls: map[string]int{}}
	lis := listen(t)
	f.url = "http://" + lis.Addr().String()
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			f.record(info.FullMethod)
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			f.record(info.FullMethod)
			return h(srv, ss)
		}),
	)
	pdpb.RegisterPDServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return f
}

func (f *fakePD) record(method string) {
	f.mu.Lock()
	f.calls[method[strings.LastIndex(method, "/")+1:]]++
	f.mu.Unlock()
}

func (f *fakePD) called() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls)
}

func (f *fakePD) header() *pdpb.ResponseHeader {
	return &pdpb.ResponseHeader{ClusterId: fakeClusterID}
}

func (f *fakePD) GetMembers(context.Context, *pdpb.GetMembersRequest) (*pdpb.GetMembersResponse, error) {
	me := &pdpb.Member{Name: "pd-0", MemberId: 1, ClientUrls: []string{f.url}, PeerUrls: []string{f.url}}
	return &pdpb.GetMembersResponse{Header: f.header(), Members: []*pdpb.Member{me}, Leader: me, EtcdLeader: me}, nil
}

func (f *fakePD) GetAllStores(_ context.Context, req *pdpb.GetAllStoresRequest) (*pdpb.GetAllStoresResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.excludeAsked = append(f.excludeAsked, req.GetExcludeTombstoneStores())
	var out []*metapb.Store
	for _, st := range f.stores {
		if req.GetExcludeTombstoneStores() && !f.ignoreExclude && st.GetState() == metapb.StoreState_Tombstone {
			continue
		}
		out = append(out, st)
	}
	return &pdpb.GetAllStoresResponse{Header: f.header(), Stores: out}, nil
}

// Tso answers every request with the wall clock, so that a client that
// opens the stream in the background gets answers rather than retrying.
func (f *fakePD) Tso(stream pdpb.PD_TsoServer) error {
	var logical int64
	for {
		req, err := stream.Recv()
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		logical += int64(req.GetCount())
		err = stream.Send(&pdpb.TsoResponse{
			Header:    f.header(),
			Count:     req.GetCount(),
			Timestamp: &pdpb.Timestamp{Physical: time.Now().UnixMilli(), Logical: logical},
		})
		if err != nil {
			return err
		}
	}
}

// fakeStore is one TiKV's import service, recording the modes it was set to.
type fakeStore struct {
	import_sstpb.UnimplementedImportSSTServer
	addr string
	srv  *grpc.Server

	mu    sync.Mutex
	modes []import_sstpb.SwitchMode
}

func startFakeStore(t *testing.T) *fakeStore {
	t.Helper()
	lis := listen(t)
	s := &fakeStore{addr: lis.Addr().String(), srv: grpc.NewServer()}
	import_sstpb.RegisterImportSSTServer(s.srv, s)
	go s.srv.Serve(lis)
	t.Cleanup(s.srv.Stop)
	return s
}

func (s *fakeStore) SwitchMode(_ context.Context, req *import_sstpb.SwitchModeRequest) (*import_sstpb.SwitchModeResponse, error) {
	s.mu.Lock()
	s.modes = append(s.modes, req.GetMode())
	s.mu.Unlock()
	return &import_sstpb.SwitchModeResponse{}, nil
}

func (s *fakeStore) got() []import_sstpb.SwitchMode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.modes)
}

// fakePDHTTP is PD's HTTP API as far as schedulers and schedule config go.
type fakePDHTTP struct {
	url string

	mu         sync.Mutex
	schedulers []string
	paused     map[string]int // scheduler → delay last set
	config     map[string]any
	requests   []string // "METHOD path body"
	failPost   map[string]bool
}

func startFakePDHTTP(t *testing.T, schedulers []string, paused map[string]int, config map[string]any) *fakePDHTTP {
	t.Helper()
	f := &fakePDHTTP{schedulers: schedulers, paused: paused, config: config, failPost: map[string]bool{}}
	if f.paused == nil {
		f.paused = map[string]int{}
	}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fakePDHTTP) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, strings.TrimSpace(r.Method+" "+r.URL.RequestURI()+" "+string(body)))
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
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
		for k, v := range in {
			if _, ok := f.config[k]; !ok {
				reply(http.StatusBadRequest, "config item "+k+" not found")
				return
			}
			f.config[k] = v
		}
		reply(http.StatusOK, "The config is updated.")
	default:
		reply(http.StatusNotFound, "no such API")
	}
}

func (f *fakePDHTTP) state() (paused map[string]int, config map[string]any, requests []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.paused), maps.Clone(f.config), slices.Clone(f.requests)
}

func (f *fakePDHTTP) resetRequests() {
	f.mu.Lock()
	f.requests = nil
	f.mu.Unlock()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis := listen(t)
	addr := lis.Addr().String()
	lis.Close()
	return addr
}
