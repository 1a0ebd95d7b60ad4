package meta

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
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
	Verify VerifySpec `json:"verify"`
	Post   PostSpec   `json:"post"`
	TiDB   TiDBSpec   `json:"tidb"`
}

// TiDBSpec is how the job treats a TiDB cluster behind the target: with PD
// addresses set, prepare switches TiKV to import mode and pauses PD's
// balance schedulers, a keeper re-asserts both while shards are in work,
// and finalize restores what prepare saved.
type TiDBSpec struct {
	PDAddrs         []string `json:"pd-addrs,omitempty"`
	ImportMode      bool     `json:"import-mode"`
	PauseSchedulers bool     `json:"pause-schedulers"`
	PauseTTL        int      `json:"pause-ttl,omitempty"` // seconds; 0: import/tikv's default
	// PreSplit is tidb.pre-split: "auto" splits each empty table's Regions
	// at plan time (node/presplit.go), "off" does not.
	PreSplit string `json:"pre-split,omitempty"`
}

// VerifySpec says how the verify phase checks the target: digest (row
// count and content digest per table, read back by peers in primary-key
// ranges), count (row counts only) or off.
type VerifySpec struct {
	Mode string `json:"mode"`
	// RowHash names the row hash the digests use (checksum.RowHash.Name):
	// a node of a storm whose hash differs can't join the job (its digests
	// would not compare), and says so as a spec difference.
	RowHash string `json:"row-hash,omitempty"`
}

// Verify modes.
const (
	VerifyDigest = "digest"
	VerifyCount  = "count"
	VerifyOff    = "off"
)

type SourceSpec struct {
	Dir  string           `json:"dir,omitempty"` // one shared source, id "main": shorthand for Dirs
	Dirs []SourceDir      `json:"dirs,omitempty"`
	CSV  source.CSVConfig `json:"csv"`
	// Routes are the [[source.files]] rules: which file holds what, for
	// dumps that do not follow the mydumper naming. They apply to every
	// source, in order, before the mydumper naming.
	Routes []source.Route `json:"files,omitempty"`
}

// SourceDir is one dump directory of the job. Node set: only that node can
// read it (a dump on its local disk), so only it plans the source and
// claims its shards. Node empty: shared storage, any node may.
type SourceDir struct {
	ID   string `json:"id"`
	Dir  string `json:"dir"`
	Node string `json:"node,omitempty"`
}

// MainSource is the id of the source given as source.dir.
const MainSource = "main"

// Sources lists every declared source: source.dir as "main", then the
// [[source.dirs]].
func (s SourceSpec) Sources() []SourceDir {
	var out []SourceDir
	if s.Dir != "" {
		out = append(out, SourceDir{ID: MainSource, Dir: s.Dir})
	}
	return append(out, s.Dirs...)
}

// Readable says whether node can read the source.
func (d SourceDir) Readable(node string) bool { return d.Node == "" || d.Node == node }

type TargetSpec struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	User     string `json:"user"`
	TimeZone string `json:"time-zone"`
	// Hosts are the SQL servers as host:port, when there are several: a set,
	// sorted, so that nodes that list them in another order agree; Host and
	// Port are then its first. Each node begins on its own (node/join.go).
	Hosts []string `json:"hosts,omitempty"`
}

// Addrs are the target's SQL servers as host:port.
func (t TargetSpec) Addrs() []string {
	if len(t.Hosts) > 0 {
		return t.Hosts
	}
	return []string{net.JoinHostPort(t.Host, strconv.Itoa(t.Port))}
}

type ImportSpec struct {
	ShardSize   ShardSize `json:"shard-size"`
	BatchSize   int       `json:"batch-size"`
	OnDuplicate string    `json:"on-duplicate"`
	Mode        string    `json:"mode"`
	Incremental bool      `json:"incremental"`
	MaxErrors   int64     `json:"max-errors"`
	// DeferIndexes: "auto" leaves a table's non-unique secondary indexes
	// out while it loads and builds them in its table steps; "off".
	DeferIndexes string `json:"defer-indexes"`
}

// PostSpec is what a table's steps do after its last shard.
type PostSpec struct {
	Analyze bool `json:"analyze"` // ANALYZE TABLE
}

// ShardSize is import.shard-size: bytes, or ShardSizeAuto (0), which the
// plan turns into a size that gives every worker of the job several shards
// (source.AutoShardSize). It reads and writes "auto" in JSON, so the spec in
// etcd and a spec difference say it as the config does.
type ShardSize int64

// ShardSizeAuto lets the plan choose.
const ShardSizeAuto ShardSize = 0

func (s ShardSize) Auto() bool { return s == ShardSizeAuto }

func (s ShardSize) String() string {
	if s.Auto() {
		return "auto"
	}
	return fmt.Sprint(int64(s))
}

func (s ShardSize) MarshalJSON() ([]byte, error) {
	if s.Auto() {
		return []byte(`"auto"`), nil
	}
	return json.Marshal(int64(s))
}

func (s *ShardSize) UnmarshalJSON(b []byte) error {
	if string(b) == `"auto"` {
		*s = ShardSizeAuto
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("shard-size %s: want a number of bytes or \"auto\"", b)
	}
	*s = ShardSize(n)
	return nil
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

// NodeRecord is what nodes/<id> holds: the NodeInfo a node registered with,
// refreshed by its heartbeat (at most every 5 s) with what it is doing.
type NodeRecord struct {
	NodeInfo
	Heartbeat    time.Time `json:"heartbeat,omitzero"`
	Phase        string    `json:"phase,omitempty"`
	RowsWritten  int64     `json:"rows_written,omitempty"` // by this process, since it started
	BytesWritten int64     `json:"bytes_written,omitempty"`
	StatusAddr   string    `json:"status_addr,omitempty"` // where it serves /metrics, /status, /debug/pprof
}

// PhaseMarker says a leader phase is complete.
type PhaseMarker struct {
	Phase   Phase           `json:"phase"`
	By      string          `json:"by"`
	At      time.Time       `json:"at"`
	Error   string          `json:"error,omitempty"`
	Summary json.RawMessage `json:"summary,omitempty"`
}

// JobPlan is the plan phase's marker summary: what the job decided once,
// before any source was planned.
type JobPlan struct {
	Sources  []string `json:"sources"`
	LoadData bool     `json:"load_data"`
	// ShardSize is what every source's files are split at: import.shard-size,
	// or, when that is "auto" (ShardSizeAuto true), the size chosen for
	// AutoBytes of data files and AutoWorkers workers over AutoNodes nodes
	// (those joined when the plan ran; source.AutoShardSize). Every source's
	// plan, and every retry of it, reads it from here, so the shards of a
	// source never depend on which leader cut them.
	ShardSize     int64 `json:"shard_size"`
	ShardSizeAuto bool  `json:"shard_size_auto,omitempty"`
	AutoBytes     int64 `json:"auto_bytes,omitempty"`
	AutoWorkers   int   `json:"auto_workers,omitempty"`
	AutoNodes     int   `json:"auto_nodes,omitempty"`
}

// PlanSummary is a plan-source phase's marker summary.
type PlanSummary struct {
	Source string `json:"source,omitempty"`
	Dir    string `json:"dir,omitempty"`
	// ShardSize is the size the source's files were split at: the job's
	// (the plan phase's JobPlan) when import.shard-size is "auto".
	ShardSize int64       `json:"shard_size,omitempty"`
	Shards    int         `json:"shards"`
	Bytes     int64       `json:"bytes"`
	Tables    []PlanTable `json:"tables"`
	Skipped   []string    `json:"skipped,omitempty"`
	LoadData  bool        `json:"load_data"`
	// With source.csv.header = "auto": the CSV files (relative to Dir)
	// whose first line was found to be a header, and those whose was data.
	CSVHeader   []string `json:"csv_header,omitempty"`
	CSVNoHeader []string `json:"csv_no_header,omitempty"`
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
	// PreSplit is the split of the table's Regions before the import, on
	// TiDB (tidb.pre-split).
	PreSplit *PreSplit `json:"pre_split,omitempty"`
	// Indexes are every index the table must have once its steps are done
	// (its schema file's, or the target's own when it has none), recorded
	// before any of them is dropped: the deferred ones are built by the
	// table's steps, and the whole set is checked against the target.
	// None for a table that held rows (import.incremental): it is never
	// touched.
	Indexes     []source.Index `json:"indexes,omitempty"`
	IndexSource string         `json:"index_source,omitempty"` // the schema file, or "target"
	// ForeignKeys the table declares: the server adds an index a foreign
	// key lacks, which the index check then allows.
	ForeignKeys int `json:"foreign_keys,omitempty"`
}

// TableStep is one table's work after its last shard (node/steps.go):
// build its deferred indexes, check its index set, ANALYZE it.
type TableStep struct {
	DB    string `json:"db"`
	Table string `json:"table"`
}

// Step names of a StepResult and a StepProgress, as the barrier and status
// show them.
const (
	StepIndexes = "indexes"
	StepCheck   = "check"
	StepAnalyze = "analyze"
	// StepVerifyPlan splits the table into the verify ranges peers read
	// back; StepVerify (in the barrier) is the time they took.
	StepVerifyPlan = "verify-plan"
	StepVerify     = "verify"
	// StepAdminChecksum is TiDB's ADMIN CHECKSUM TABLE, run as a table's
	// last step while other tables still import (TiKV scans the table's
	// Regions in parallel, so run at the end one table after another it
	// would trail the job).
	StepAdminChecksum = "admin-checksum"
)

// StepResult is what one step of a table did.
type StepResult struct {
	Step    string  `json:"step"` // indexes, check, analyze
	Detail  string  `json:"detail,omitempty"`
	Seconds float64 `json:"seconds"`
}

// TableVerify is how one table is verified.
type TableVerify struct {
	Mode   string `json:"mode"`
	Ranges int    `json:"ranges,omitempty"`
	Note   string `json:"note,omitempty"`
}

// StepProgress says which step of a table a node is doing.
type StepProgress struct {
	Node string    `json:"node"`
	Step string    `json:"step"`
	At   time.Time `json:"at"`
}

// StepsDone records a table's finished steps.
type StepsDone struct {
	DB    string       `json:"db"`
	Table string       `json:"table"`
	Steps []StepResult `json:"steps"`
	// Verify is how the table is verified, decided by its steps, which
	// wrote its verify ranges (peers read them back at once); nil when
	// the verify-plan phase decides.
	Verify *TableVerify `json:"verify,omitempty"`
	// AdminChecksum is what the admin-checksum step read (TiDB); the
	// barrier's entry for the table carries it.
	AdminChecksum *AdminChecksum `json:"admin_checksum,omitempty"`
	Node          string         `json:"node"`
	Epoch         int64          `json:"epoch"`
	At            time.Time      `json:"at"`
}

// PreSplit is what the plan did to a TiDB table's Regions before any row
// was written: split at the first key of each shard (By), or evenly over
// the sharded row-id or AUTO_RANDOM range (Between, Regions), with the
// Regions counted before and after. A split that failed says so in Warning;
// the job goes on regardless.
type PreSplit struct {
	DB      string   `json:"db"`
	Table   string   `json:"table"`
	Method  string   `json:"method"`            // PreSplitFirstKeys, PreSplitEven or PreSplitNone
	By      []string `json:"by,omitempty"`      // SPLIT TABLE ... BY these value lists
	Between string   `json:"between,omitempty"` // SPLIT TABLE ... BETWEEN this
	Regions int      `json:"regions,omitempty"` // ... REGIONS this
	// Why is why a table was not split (PreSplitNone).
	Why           string  `json:"why,omitempty"`
	RegionsBefore int     `json:"regions_before,omitempty"`
	RegionsAfter  int     `json:"regions_after,omitempty"`
	Scattered     float64 `json:"scatter_finish_ratio,omitempty"` // SPLIT TABLE's SCATTER_FINISH_RATIO
	Warning       string  `json:"warning,omitempty"`
}

// PreSplit methods.
const (
	PreSplitFirstKeys = "shard-first-keys"
	PreSplitEven      = "even"
	PreSplitNone      = "none"
)

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
	DB          string `json:"db"`
	Table       string `json:"table"`
	Rows        int64  `json:"rows"`
	Bytes       int64  `json:"bytes"`
	DigestCount int64  `json:"digest_count"`
	DigestXOR   string `json:"digest_xor"` // hex: etcdctl users read it, JSON numbers lose 64-bit precision
	// DigestColumns are the target columns the digest covers, in table
	// order (the source's columns); "*mixed*" when they changed within the
	// shard, so the table's digest can't be checked.
	DigestColumns []string  `json:"digest_columns,omitempty"`
	Node          string    `json:"node"`
	Epoch         int64     `json:"epoch"`
	Seconds       float64   `json:"seconds"`
	At            time.Time `json:"at"`
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
	Job    string        `json:"job"`
	Status Status        `json:"status"`
	Reason string        `json:"reason,omitempty"`
	Tables []TableResult `json:"tables"`
	// RowHash names the row hash of the tables' digests (VerifySpec's), for
	// whoever compares them later.
	RowHash string   `json:"row_hash,omitempty"`
	Rows    int64    `json:"rows"`
	Bytes   int64    `json:"bytes"`
	Shards  int      `json:"shards"`
	Failed  []Failed `json:"failed,omitempty"`
	// Skipped are the source files no table got rows from (paths joined
	// to their source directory): metadata, views' schemas, files a
	// [[source.files]] rule ignores. NoData are the tables (db.table) the
	// plan found no data file for: created, if they were missing, but
	// empty.
	Skipped  []string  `json:"skipped,omitempty"`
	NoData   []string  `json:"no_data_tables,omitempty"`
	TiKV     string    `json:"tikv,omitempty"`     // what finalize restored on the TiDB cluster
	Rejected int64     `json:"rejected,omitempty"` // rows refused within import.max-errors: storm_meta.rejected
	Nodes    []string  `json:"nodes"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Seconds  float64   `json:"seconds"`
	By       string    `json:"by"`
	// PreSplit is what the plan did to the tables' Regions (TiDB,
	// tidb.pre-split).
	PreSplit []PreSplit `json:"pre_split,omitempty"`
}

// TableResult is the verify phase's finding for one table.
type TableResult struct {
	DB             string `json:"db"`
	Table          string `json:"table"`
	Mode           string `json:"mode"` // digest, count or off, as checked for this table
	Expected       int64  `json:"expected_rows"`
	Actual         int64  `json:"actual_rows"`
	ExpectedDigest string `json:"expected_digest,omitempty"`
	ActualDigest   string `json:"actual_digest,omitempty"`
	Duplicates     int64  `json:"duplicates,omitempty"` // source rows replaced or skipped (on-duplicate)
	OK             bool   `json:"ok"`
	Note           string `json:"note,omitempty"`
	// AdminChecksum is TiDB's own ADMIN CHECKSUM TABLE of the table after
	// the import (TiDB targets only): a record to compare with a later one
	// or with another cluster's, computed by TiKV over the stored KV pairs.
	AdminChecksum *AdminChecksum `json:"admin_checksum,omitempty"`
	// Steps are what the table's steps did after its last shard, and how
	// long each took.
	Steps []StepResult `json:"steps,omitempty"`
}

// AdminChecksum is one ADMIN CHECKSUM TABLE result.
type AdminChecksum struct {
	CRC64XOR   string  `json:"crc64xor"` // decimal: an unsigned 64-bit value JSON numbers can't hold
	TotalKVs   uint64  `json:"total_kvs"`
	TotalBytes uint64  `json:"total_bytes"`
	Seconds    float64 `json:"seconds"`
	Error      string  `json:"error,omitempty"`
}

// VerifyRange is a part of a table the verify phase reads back: rows with
// Lo <= PK < Hi (nil: unbounded), or the whole table when PK is "".
type VerifyRange struct {
	ID      string   `json:"id"`
	DB      string   `json:"db"`
	Table   string   `json:"table"`
	Columns []string `json:"columns"`
	PK      string   `json:"pk,omitempty"`
	Lo      *int64   `json:"lo,omitempty"`
	Hi      *int64   `json:"hi,omitempty"`
}

// VerifyDone is the target digest of one verify range.
type VerifyDone struct {
	DB          string    `json:"db"`
	Table       string    `json:"table"`
	DigestCount int64     `json:"digest_count"`
	DigestXOR   string    `json:"digest_xor"`
	Node        string    `json:"node"`
	Seconds     float64   `json:"seconds"`
	At          time.Time `json:"at"`
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
