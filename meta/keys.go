// Package meta owns storm's etcd key schema and the JSON records stored under
// it. No other package builds key strings: they ask a Job for them.
package meta

import (
	"fmt"
	"strings"
)

// DefaultPrefix is where storm keeps its jobs unless etcd.prefix says otherwise.
const DefaultPrefix = "/storm"

// Phase names a step of a job. The leader phases run once per job under an
// election; import has no leader.
type Phase string

const (
	PhasePlan    Phase = "plan"
	PhasePrepare Phase = "prepare"
	PhaseImport  Phase = "import"
	PhaseVerify  Phase = "verify"
	// PhaseVerifyPlan splits the tables into the ranges peers read back.
	PhaseVerifyPlan Phase = "verify-plan"
	PhaseFinalize   Phase = "finalize"
)

// Kind is the directory of a per-job key: the part after /storm/jobs/<job>/.
type Kind string

const (
	KindSpec     Kind = "spec"
	KindNodes    Kind = "nodes"
	KindElection Kind = "election"
	KindPhase    Kind = "phase"
	KindShards   Kind = "shards"
	KindClaims   Kind = "claims"
	KindProgress Kind = "progress"
	KindDone     Kind = "done"
	KindFailed   Kind = "failed"
	KindTiKV     Kind = "tikv"
	KindCancel   Kind = "cancel"
	KindBarrier  Kind = "barrier"
	// KindTables records, once per table, that it was created or found and
	// checked empty: a later source into the same table skips the check.
	KindTables Kind = "tables"
)

// Job formats the keys of one job: <prefix>/jobs/<id>/...
type Job struct {
	Prefix string
	ID     string
}

// NewJob validates the id so it can never escape its key directory.
func NewJob(prefix, id string) (Job, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasPrefix(prefix, "/") {
		return Job{}, fmt.Errorf("etcd prefix %q must start with /", prefix)
	}
	if err := checkName("job id", id); err != nil {
		return Job{}, err
	}
	return Job{Prefix: strings.TrimRight(prefix, "/"), ID: id}, nil
}

func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if strings.ContainsAny(s, "/ \t\n") {
		return fmt.Errorf("%s %q must not contain '/' or spaces", what, s)
	}
	return nil
}

// Root is the prefix of every key of the job, with a trailing slash.
func (j Job) Root() string { return j.Prefix + "/jobs/" + j.ID + "/" }

// JobsPrefix lists every job under the prefix.
func (j Job) JobsPrefix() string { return j.Prefix + "/jobs/" }

// Dir is the prefix of every key of a kind, with a trailing slash.
func (j Job) Dir(k Kind) string { return j.Root() + string(k) + "/" }

func (j Job) Spec() string                    { return j.Root() + string(KindSpec) }
func (j Job) Barrier() string                 { return j.Root() + string(KindBarrier) }
func (j Job) Cancel() string                  { return j.Root() + string(KindCancel) }
func (j Job) TiKVSaved() string               { return j.Dir(KindTiKV) + "saved" }
func (j Job) Node(id string) string           { return j.Dir(KindNodes) + id }
func (j Job) Election(p Phase) string         { return j.Dir(KindElection) + string(p) }
func (j Job) PhaseMarker(p Phase) string      { return j.Dir(KindPhase) + string(p) }
func (j Job) Shard(id string) string          { return j.Dir(KindShards) + id }
func (j Job) Claim(id string) string          { return j.Dir(KindClaims) + id }
func (j Job) Progress(id string) string       { return j.Dir(KindProgress) + id }
func (j Job) Done(id string) string           { return j.Dir(KindDone) + id }
func (j Job) Failed(id string) string         { return j.Dir(KindFailed) + id }
func (j Job) ElectionName(name string) string { return j.Dir(KindElection) + name }

// PhasePlanSource prefixes the phases that plan one source each. Not
// "plan/": an election's keys live under its name plus "/", and the plan
// phase's election must not see another's campaigners.
const PhasePlanSource Phase = "plan-source"

// PlanSource is the phase that plans one source: phase/plan-source/<id>.
func PlanSource(id string) Phase { return PhasePlanSource + "/" + Phase(id) }

// SourceOfPhase returns the source a plan-source/<id> phase plans.
func SourceOfPhase(name string) (string, bool) {
	return strings.CutPrefix(name, string(PhasePlanSource)+"/")
}

// CheckSourceID keeps source ids usable in keys and shard ids.
func CheckSourceID(id string) error {
	if err := checkName("source id", id); err != nil {
		return err
	}
	if strings.Contains(id, ".") {
		return fmt.Errorf("source id %q must not contain '.'", id)
	}
	return nil
}

// Key is a parsed per-job key.
type Key struct {
	Job  string
	Kind Kind
	Name string // the shard id, node id or phase; "" for spec, barrier, cancel
}

// Parse splits a key of this job's prefix. ok is false for keys outside any
// job or of an unknown kind. Election keys carry the lease suffix etcd adds
// (election/<phase>/<lease>); Name keeps it.
func (j Job) Parse(key string) (k Key, ok bool) {
	rest, found := strings.CutPrefix(key, j.JobsPrefix())
	if !found {
		return Key{}, false
	}
	id, rest, found := strings.Cut(rest, "/")
	if !found || id == "" {
		return Key{}, false
	}
	kind, name, _ := strings.Cut(rest, "/")
	switch Kind(kind) {
	case KindSpec, KindBarrier, KindCancel:
		if name != "" {
			return Key{}, false
		}
	case KindNodes, KindElection, KindPhase, KindShards, KindClaims, KindProgress, KindDone, KindFailed, KindTiKV,
		KindVerifyRanges, KindVerifyClaims, KindVerifyDone, KindVerifyFailed, KindTables,
		KindSteps, KindStepClaims, KindStepsDone, KindStepsFailed, KindStepProgress:
		if name == "" {
			return Key{}, false
		}
	default:
		return Key{}, false
	}
	return Key{Job: id, Kind: Kind(kind), Name: name}, true
}

// ShardID names a shard readably for etcdctl: <source>.<db>.<table>.<n>.
func ShardID(source, db, table string, n int) string {
	return fmt.Sprintf("%s.%s.%s.%05d", source, db, table, n)
}
