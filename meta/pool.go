package meta

// Pool is a set of work items that nodes claim on their leases: the import
// shards, and the verify ranges the verify phase reads back. Both follow
// one protocol (claim, complete or fail under the claim's epoch), in
// different key directories.
type Pool struct {
	Name     string
	Items    Kind // definitions
	Claims   Kind // owners, on their leases
	Done     Kind
	Failed   Kind
	Progress Kind // "" when the pool reports no progress
}

// Verify-range kinds: the verify phase splits each table by primary key
// into ranges that peers claim and read back.
const (
	KindVerifyRanges Kind = "verify-ranges"
	KindVerifyClaims Kind = "verify-claims"
	KindVerifyDone   Kind = "verify-done"
	KindVerifyFailed Kind = "verify-failed"
)

// Table-step kinds: one item per table, claimable once its last shard is
// done (node/steps.go).
const (
	KindSteps       Kind = "table-steps"
	KindStepClaims  Kind = "step-claims"
	KindStepsDone   Kind = "steps-done"
	KindStepsFailed Kind = "steps-failed"
	// KindStepProgress says which step of a table runs now (StepProgress).
	KindStepProgress Kind = "step-progress"
)

var (
	StepPool   = Pool{Name: "table steps", Items: KindSteps, Claims: KindStepClaims, Done: KindStepsDone, Failed: KindStepsFailed, Progress: KindStepProgress}
	ImportPool = Pool{Name: "import", Items: KindShards, Claims: KindClaims, Done: KindDone, Failed: KindFailed, Progress: KindProgress}
	VerifyPool = Pool{Name: "verify", Items: KindVerifyRanges, Claims: KindVerifyClaims, Done: KindVerifyDone, Failed: KindVerifyFailed}
)

// Key is the key of item id in directory k of the job.
func (j Job) Key(k Kind, id string) string { return j.Dir(k) + id }
