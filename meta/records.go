package meta

import (
	"encoding/json"
	"fmt"
	"time"

	"storm/import/source"
)

// Spec is the job as every node must agree on it. The first node writes it;
// the others compare theirs field by field (Diff). Per-node settings (node id,
// workers) and secrets (the target password) are not part of it.
type Spec struct {
	Job    string     `json:"job"`
	Source SourceSpec `json:"source"`
	Target TargetSpec `json:"target"`
	Import ImportSpec `json:"import"`
}

type SourceSpec struct {
	Dir string           `json:"dir"`
	CSV source.CSVConfig `json:"csv"`
}

type TargetSpec struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	User     string `json:"user"`
	TimeZone string `json:"time-zone"`
}

type ImportSpec struct {
	ShardSize   int64  `json:"shard-size"`
	BatchSize   int    `json:"batch-size"`
	OnDuplicate string `json:"on-duplicate"`
	Mode        string `json:"mode"`
	Incremental bool   `json:"incremental"`
}

// SpecRecord is what /spec holds: the spec plus who wrote it.
type SpecRecord struct {
	Spec
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// NodeInfo lives under nodes/<id> on the node's lease.
type NodeInfo struct {
	ID      string    `json:"id"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Workers int       `json:"workers"`
	Started time.Time `json:"started"`
	Lease   int64     `json:"lease"`
}

// PhaseMarker says a leader phase is complete.
type PhaseMarker struct {
	Phase   Phase           `json:"phase"`
	By      string          `json:"by"`
	At      time.Time       `json:"at"`
	Error   string          `json:"error,omitempty"`
	Summary json.RawMessage `json:"summary,omitempty"`
}

// PlanSummary is the plan phase's marker summary.
type PlanSummary struct {
	Shards   int         `json:"shards"`
	Bytes    int64       `json:"bytes"`
	Tables   []PlanTable `json:"tables"`
	Skipped  []string    `json:"skipped,omitempty"`
	LoadData bool        `json:"load_data"`
}

// PlanTable records what the plan leader found for one table, once, so that
// later nodes never re-check a table their peers have begun to fill.
type PlanTable struct {
	DB          string `json:"db"`
	Table       string `json:"table"`
	Shards      int    `json:"shards"`
	Bytes       int64  `json:"bytes"`
	Created     bool   `json:"created"`
	InitialRows int64  `json:"initial_rows"`
}

// Shard is one unit of import work: a chunk of a data file.
type Shard struct {
	ID     string       `json:"id"`
	Source string       `json:"source"`
	DB     string       `json:"db"`
	Table  string       `json:"table"`
	Chunk  source.Chunk `json:"chunk"`
	Bytes  int64        `json:"bytes"`
}

// Claim is the owner of a shard in work; it lives on the owner's lease. The
// key's ModRevision is the claim's epoch.
type Claim struct {
	Node string    `json:"node"`
	At   time.Time `json:"at"`
}

// Progress is a throttled snapshot of a shard in work.
type Progress struct {
	Node  string    `json:"node"`
	Rows  int64     `json:"rows"`
	Bytes int64     `json:"bytes"`
	At    time.Time `json:"at"`
}

// Done records a finished shard; the database checkpoint is its truth.
type Done struct {
	DB          string    `json:"db"`
	Table       string    `json:"table"`
	Rows        int64     `json:"rows"`
	Bytes       int64     `json:"bytes"`
	DigestCount int64     `json:"digest_count"`
	DigestXOR   string    `json:"digest_xor"` // hex: etcdctl users read it, JSON numbers lose 64-bit precision
	Node        string    `json:"node"`
	Epoch       int64     `json:"epoch"`
	Seconds     float64   `json:"seconds"`
	At          time.Time `json:"at"`
}

// Failed records a shard that stopped for good.
type Failed struct {
	Shard  string    `json:"shard"`
	File   string    `json:"file"`
	Line   int64     `json:"line,omitempty"`
	Reason string    `json:"reason"`
	Node   string    `json:"node"`
	At     time.Time `json:"at"`
}

// CancelRequest asks every node to stop.
type CancelRequest struct {
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// Status of a finished job.
type Status string

const (
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Barrier is the one completion signal of the whole parallel import.
type Barrier struct {
	Job      string        `json:"job"`
	Status   Status        `json:"status"`
	Reason   string        `json:"reason,omitempty"`
	Tables   []TableResult `json:"tables"`
	Rows     int64         `json:"rows"`
	Bytes    int64         `json:"bytes"`
	Shards   int           `json:"shards"`
	Failed   []Failed      `json:"failed,omitempty"`
	Nodes    []string      `json:"nodes"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Seconds  float64       `json:"seconds"`
	By       string        `json:"by"`
}

// TableResult is the verify phase's finding for one table.
type TableResult struct {
	DB       string `json:"db"`
	Table    string `json:"table"`
	Expected int64  `json:"expected_rows"`
	Actual   int64  `json:"actual_rows"`
	OK       bool   `json:"ok"`
	Note     string `json:"note,omitempty"`
}

// ExitCode is what a node, `storm wait` and a late node exit with.
func (b Barrier) ExitCode() int {
	if b.Status == StatusSucceeded {
		return 0
	}
	return 1
}

// Encode marshals a record for etcd. Records are plain structs: failing to
// marshal one is a programming error.
func Encode(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("meta: encode %T: %v", v, err))
	}
	return string(b)
}

// Decode unmarshals a record read from key, naming the key on error.
func Decode(key string, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}
