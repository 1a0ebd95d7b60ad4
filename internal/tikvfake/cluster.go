package tikvfake

import (
	"crypto/tls"
	"encoding/json"
	"slices"
	"testing"

	"github.com/pingcap/kvproto/pkg/import_sstpb"
	"github.com/pingcap/kvproto/pkg/metapb"
)

// StoreSpec is one store PD lists.
type StoreSpec struct {
	ID     uint64
	State  metapb.StoreState
	Labels []*metapb.StoreLabel
	// Down: PD lists the store, nothing listens at its address.
	Down bool
}

// TiFlash are the labels of a TiFlash store.
func TiFlash() []*metapb.StoreLabel {
	return []*metapb.StoreLabel{{Key: "engine", Value: "tiflash"}}
}

// DefaultSchedule is a PD schedule config as PD returns it, with values of
// several JSON kinds that must survive untouched.
func DefaultSchedule() map[string]any {
	return map[string]any{
		"max-merge-region-size":    json.Number("20"),
		"max-merge-region-keys":    json.Number("200000"),
		"leader-schedule-limit":    json.Number("4"),
		"split-merge-interval":     "1h0m0s",
		"enable-cross-table-merge": true,
	}
}

// Cluster is a fake PD (gRPC and HTTP) with fake stores.
type Cluster struct {
	PD   *PD
	HTTP *PDHTTP
	// Stores are the stores that listen, by id; every store that is not
	// Down gets one, TiFlash and tombstones included, so that a test can
	// see they were left alone.
	Stores map[uint64]*Store
}

// ClusterConfig describes a cluster to start.
type ClusterConfig struct {
	Stores     []StoreSpec
	Schedulers []string
	Paused     map[string]int // scheduler → delay, paused before the test
	Config     map[string]any // nil: DefaultSchedule()
	// SharedPort serves PD's HTTP API on its gRPC port, as a real PD does,
	// so that the PD address alone reaches both; otherwise the HTTP API has
	// a port of its own (HTTP.URL()).
	SharedPort bool
	// TLS serves every port (PD's gRPC and HTTP, the stores) with this
	// server config; nil: plain.
	TLS *tls.Config
}

// StartCluster starts a cluster that runs until the test ends.
func StartCluster(t testing.TB, cc ClusterConfig) *Cluster {
	t.Helper()
	c := &Cluster{Stores: map[uint64]*Store{}}
	var metas []*metapb.Store
	for _, sp := range cc.Stores {
		addr := DeadAddr(t)
		if !sp.Down {
			fs := StartStoreTLS(t, cc.TLS)
			c.Stores[sp.ID] = fs
			addr = fs.Addr
		}
		metas = append(metas, &metapb.Store{Id: sp.ID, Address: addr, State: sp.State, Labels: sp.Labels})
	}
	conf := cc.Config
	if conf == nil {
		conf = DefaultSchedule()
	}
	if cc.SharedPort {
		c.HTTP = NewPDHTTP(cc.Schedulers, cc.Paused, conf)
		c.PD = StartPDTLS(t, metas, c.HTTP, cc.TLS)
	} else {
		c.PD = StartPDTLS(t, metas, nil, cc.TLS)
		c.HTTP = startPDHTTP(t, cc.Schedulers, cc.Paused, conf, cc.TLS)
	}
	return c
}

// Modes is what each store received, by store id, for stores that received
// anything.
func (c *Cluster) Modes() map[uint64][]import_sstpb.SwitchMode {
	out := map[uint64][]import_sstpb.SwitchMode{}
	for id, s := range c.Stores {
		if got := s.Modes(); len(got) > 0 {
			out[id] = got
		}
	}
	return out
}

// StoreIDs are the ids of the stores that listen, ascending.
func (c *Cluster) StoreIDs() []uint64 {
	var ids []uint64
	for id := range c.Stores {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
