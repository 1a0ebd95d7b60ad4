package tikvfake

import (
	"context"
	"crypto/tls"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/import_sstpb"
	"google.golang.org/grpc"
)

// Store is one TiKV's import service, recording the modes it was set to.
type Store struct {
	import_sstpb.UnimplementedImportSSTServer
	// Addr is host:port, as PD lists a store's address.
	Addr string
	srv  *grpc.Server

	mu       sync.Mutex
	switches []Switch
	onSwitch func(import_sstpb.SwitchMode)
}

// Switch is one SwitchMode request a store received.
type Switch struct {
	Seq  uint64
	At   time.Time
	Mode import_sstpb.SwitchMode
}

// StartStore serves a store's ImportSST service on a loopback port until
// the test ends or Stop.
func StartStore(t testing.TB) *Store {
	t.Helper()
	return StartStoreTLS(t, nil)
}

// StartStoreTLS is StartStore serving TLS with tc (nil: plain).
func StartStoreTLS(t testing.TB, tc *tls.Config) *Store {
	t.Helper()
	lis := listenTLS(t, tc)
	s := &Store{Addr: lis.Addr().String(), srv: grpc.NewServer()}
	import_sstpb.RegisterImportSSTServer(s.srv, s)
	go s.srv.Serve(lis)
	t.Cleanup(s.srv.Stop)
	return s
}

// Stop takes the store down: its port refuses connections from now on.
func (s *Store) Stop() { s.srv.Stop() }

func (s *Store) SwitchMode(_ context.Context, req *import_sstpb.SwitchModeRequest) (*import_sstpb.SwitchModeResponse, error) {
	s.mu.Lock()
	hook := s.onSwitch
	s.mu.Unlock()
	if hook != nil {
		// Before the switch is recorded: the hook sees the world as the
		// request found it.
		hook(req.GetMode())
	}
	s.mu.Lock()
	s.switches = append(s.switches, Switch{Seq: nextSeq(), At: time.Now(), Mode: req.GetMode()})
	s.mu.Unlock()
	return &import_sstpb.SwitchModeResponse{}, nil
}

// OnSwitch runs hook on every SwitchMode request as it arrives (nil: none).
func (s *Store) OnSwitch(hook func(import_sstpb.SwitchMode)) {
	s.mu.Lock()
	s.onSwitch = hook
	s.mu.Unlock()
}

// Modes are the modes the store was switched to, in order.
func (s *Store) Modes() []import_sstpb.SwitchMode {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]import_sstpb.SwitchMode, len(s.switches))
	for i, sw := range s.switches {
		out[i] = sw.Mode
	}
	return out
}

// Switches are the SwitchMode requests the store received, in order.
func (s *Store) Switches() []Switch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.switches)
}
