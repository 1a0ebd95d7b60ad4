// Package tikvfake is the control plane of a TiDB cluster as far as storm
// touches it, in-process, for tests: PD's gRPC API (the calls client-go's
// PD client makes to start and list the stores: GetMembers, GetClusterInfo,
// GetAllStores, Tso), PD's HTTP API for schedulers and the
// schedule config, and each TiKV store's ImportSST SwitchMode.
//
// Every fake records what it receives, safe for concurrent use. Records
// carry a sequence number drawn from one counter for the whole process, so a
// test can put the requests of different fakes (a store switched, then a
// scheduler paused) in the order they arrived.
//
// The servers listen on 127.0.0.1, so storm nodes running as separate
// processes can reach them as they would a real cluster.
package tikvfake

import (
	"context"
	"crypto/tls"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	"google.golang.org/grpc"
)

// ClusterID is the cluster id the fake PD answers with.
const ClusterID = 7

// seq orders the records of every fake in the process.
var seq atomic.Uint64

func nextSeq() uint64 { return seq.Add(1) }

// PD answers the PD gRPC calls the PD client makes, and records every method
// called, implemented or not, so that a test can see what a real PD would
// have been asked.
type PD struct {
	pdpb.UnimplementedPDServer
	// URL is the client URL, http://127.0.0.1:<port>, as PD advertises it.
	URL string

	mu            sync.Mutex
	stores        []*metapb.Store
	calls         map[string]int
	excludeAsked  []bool
	ignoreExclude bool
}

// StartPD serves PD's gRPC API on a loopback port until the test ends. If
// api is not nil, the same port also serves it over HTTP/1.1, as a real PD
// serves its gRPC and HTTP APIs on one client port; api.URL is set to it.
func StartPD(t testing.TB, stores []*metapb.Store, api *PDHTTP) *PD {
	t.Helper()
	return StartPDTLS(t, stores, api, nil)
}

// StartPDTLS is StartPD serving TLS with tc (nil: plain), on gRPC and HTTP
// alike; its URL is https://.
func StartPDTLS(t testing.TB, stores []*metapb.Store, api *PDHTTP, tc *tls.Config) *PD {
	t.Helper()
	f := &PD{stores: stores, calls: map[string]int{}}
	lis := listenTLS(t, tc)
	f.URL = "http://" + lis.Addr().String()
	if tc != nil {
		f.URL = "https://" + lis.Addr().String()
	}
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
	if api == nil {
		go srv.Serve(lis)
		t.Cleanup(srv.Stop)
		return f
	}
	api.setURL(f.URL)
	grpcLis, httpLis := split(lis)
	go srv.Serve(grpcLis)
	hs := newHTTPServer(api)
	go hs.Serve(httpLis)
	t.Cleanup(func() {
		lis.Close()
		srv.Stop()
		hs.Close()
	})
	return f
}

func (f *PD) record(method string) {
	f.mu.Lock()
	f.calls[method[strings.LastIndex(method, "/")+1:]]++
	f.mu.Unlock()
}

// Called counts the gRPC methods called, by short name ("GetAllStores").
func (f *PD) Called() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls)
}

// ExcludeAsked lists, per GetAllStores call, whether the caller asked for
// tombstones to be left out.
func (f *PD) ExcludeAsked() []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.excludeAsked)
}

// SetIgnoreExclude makes GetAllStores return tombstones even when asked not
// to, as a PD might.
func (f *PD) SetIgnoreExclude(ignore bool) {
	f.mu.Lock()
	f.ignoreExclude = ignore
	f.mu.Unlock()
}

func (f *PD) header() *pdpb.ResponseHeader {
	return &pdpb.ResponseHeader{ClusterId: ClusterID}
}

func (f *PD) GetMembers(context.Context, *pdpb.GetMembersRequest) (*pdpb.GetMembersResponse, error) {
	me := &pdpb.Member{Name: "pd-0", MemberId: 1, ClientUrls: []string{f.URL}, PeerUrls: []string{f.URL}}
	return &pdpb.GetMembersResponse{Header: f.header(), Members: []*pdpb.Member{me}, Leader: me, EtcdLeader: me}, nil
}

// GetClusterInfo says the PD serves every service itself (not PD's
// microservice mode), as client-go's PD client asks when it starts.
func (f *PD) GetClusterInfo(context.Context, *pdpb.GetClusterInfoRequest) (*pdpb.GetClusterInfoResponse, error) {
	return &pdpb.GetClusterInfoResponse{Header: f.header(), ServiceModes: []pdpb.ServiceMode{pdpb.ServiceMode_PD_SVC_MODE}}, nil
}

func (f *PD) GetAllStores(_ context.Context, req *pdpb.GetAllStoresRequest) (*pdpb.GetAllStoresResponse, error) {
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
func (f *PD) Tso(stream pdpb.PD_TsoServer) error {
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

// Listen opens a loopback TCP listener.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

// listenTLS is Listen, with TLS when tc is not nil: connections arrive
// decrypted, with "h2" (gRPC) or "http/1.1" negotiated.
func listenTLS(t testing.TB, tc *tls.Config) net.Listener {
	t.Helper()
	lis := Listen(t)
	if tc == nil {
		return lis
	}
	tc = tc.Clone()
	tc.NextProtos = []string{"h2", "http/1.1"}
	return tls.NewListener(lis, tc)
}

// DeadAddr is a loopback address nothing listens on.
func DeadAddr(t testing.TB) string {
	t.Helper()
	lis := Listen(t)
	addr := lis.Addr().String()
	lis.Close()
	return addr
}
