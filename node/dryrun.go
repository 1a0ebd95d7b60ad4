package node

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"storm/import/sink"
	"storm/import/source"
	"storm/import/storage"
	"storm/jobctl"
	"storm/meta"
)

// Check is one finding of a dry run: what was checked, whether it holds,
// and, when it does not, what to fix.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	Fix    string `json:"fix,omitempty"`
}

// PlannedTable is a table of the shard plan a dry run would write.
type PlannedTable struct {
	Source string `json:"source"`
	DB     string `json:"db"`
	Table  string `json:"table"`
	Files  int    `json:"files"`
	Shards int    `json:"shards"`
	Bytes  int64  `json:"bytes"`
	Exists bool   `json:"exists"` // in the target already
	// PreSplit is how the plan would split the table's Regions (TiDB,
	// tidb.pre-split = auto, an existing empty table: node/presplit.go).
	PreSplit *meta.PreSplit `json:"pre_split,omitempty"`
}

// DryRun is what `storm plan --dry-run` found.
type DryRun struct {
	Job    string         `json:"job"`
	Checks []Check        `json:"checks"`
	Tables []PlannedTable `json:"tables"`
	Shards int            `json:"shards"`
	Bytes  int64          `json:"bytes"`
	// ShardSize is what the files were split at: import.shard-size, or
	// for "auto" (ShardSizeAuto) the size the plan would choose with this
	// node's workers alone; more nodes joined when the plan runs make it
	// smaller (meta.JobPlan records the real one).
	ShardSize     int64    `json:"shard_size"`
	ShardSizeAuto bool     `json:"shard_size_auto,omitempty"`
	LoadData      bool     `json:"load_data"`
	Skipped       []string `json:"skipped_sources,omitempty"` // node-local sources of other nodes
}

// OK says whether every check held.
func (d *DryRun) OK() bool {
	for _, c := range d.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

func (d *DryRun) check(name string, err error, detail, fix string) bool {
	c := Check{Name: name, OK: err == nil, Detail: detail, Fix: fix}
	if err != nil {
		c.Detail = err.Error()
	} else {
		c.Fix = ""
	}
	d.Checks = append(d.Checks, c)
	return err == nil
}

// PlanDryRun checks, before anything is written anywhere, what the plan
// would need: the sources this node can read (files readable and matched
// to tables, schema files accepted by the target's parser), the target
// (reachable, privileges, LOAD DATA or the INSERT fallback, connections,
// tables empty unless the job is incremental), and computes the shard
// plan. It reads the sources and the target; it writes nothing.
func PlanDryRun(ctx context.Context, cfg Config) (*DryRun, error) {
	spec := cfg.Spec
	d := &DryRun{Job: spec.Job}
	storage.ConfigureS3(cfg.S3)
	sc, err := targetConfig(cfg, spec)
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, max(cfg.StartTimeout, 5*time.Second))
	t, err := sink.Open(octx, sc)
	cancel()
	if err != nil {
		t = nil
	}
	addr := strings.Join(spec.Target.Addrs(), ",")
	d.check("target reachable", err, addr, "check target.host, target.port, target.user and the password")
	d.checkServers(ctx, sc, spec.Target.Hosts)
	if t != nil {
		defer t.Close()
		d.LoadData = t.UsesLoadData()
		mode := "LOAD DATA LOCAL INFILE"
		if !d.LoadData {
			mode = "multi-row INSERT (the server has local_infile off, or import.mode = insert): slower"
		}
		d.check("write path", nil, mode, "")
		d.checkPrivileges(ctx, t.DB())
		d.checkConnections(ctx, t.DB(), cfg.Workers)
	}
	d.ShardSize, d.ShardSizeAuto = int64(spec.Import.ShardSize), spec.Import.ShardSize.Auto()
	// Each source is listed once, for the auto size and for its checks.
	type listing struct {
		layout *source.Layout
		err    error
	}
	listed := map[string]listing{}
	discover := func(src meta.SourceDir) (*source.Layout, error) {
		l, ok := listed[src.ID]
		if !ok {
			l.layout, l.err = source.DiscoverWith(src.Dir, spec.Source.Routes)
			listed[src.ID] = l
		}
		return l.layout, l.err
	}
	if d.ShardSizeAuto {
		var total int64
		for _, src := range spec.Source.Sources() {
			if !src.Readable(cfg.NodeID) {
				continue
			}
			if layout, err := discover(src); err == nil {
				total += dataBytes(layout.Tables)
			}
		}
		d.ShardSize = source.AutoShardSize(total, max(cfg.Workers, 1), spec.Import.BatchSize)
	}
	for _, src := range spec.Source.Sources() {
		if !src.Readable(cfg.NodeID) {
			d.Skipped = append(d.Skipped, src.ID+" (on node "+src.Node+")")
			continue
		}
		layout, err := discover(src)
		d.checkSource(ctx, cfg, src, layout, err, t)
	}
	sort.Slice(d.Tables, func(i, j int) bool {
		a, b := d.Tables[i], d.Tables[j]
		return a.Source+a.DB+"."+a.Table < b.Source+b.DB+"."+b.Table
	})
	return d, nil
}

func (d *DryRun) checkPrivileges(ctx context.Context, db *sql.DB) {
	rows, err := db.QueryContext(ctx, "SHOW GRANTS")
	if err != nil {
		d.check("privileges", err, "", "")
		return
	}
	defer rows.Close()
	var grants []string
	for rows.Next() {
		var g string
		if rows.Scan(&g) == nil {
			grants = append(grants, strings.ToUpper(g))
		}
	}
	all := strings.Join(grants, "\n")
	var missing []string
	if !strings.Contains(all, "ALL PRIVILEGES ON *.*") {
		for _, p := range []string{"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE"} {
			if !strings.Contains(all, p) {
				missing = append(missing, p)
			}
		}
	}
	var err2 error
	if len(missing) > 0 {
		err2 = fmt.Errorf("the target user lacks %s", strings.Join(missing, ", "))
	}
	d.check("privileges", err2, "SELECT, INSERT, UPDATE, DELETE, CREATE on the target databases and storm_meta",
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON <db>.* and ON storm_meta.* TO the user")
}

func (d *DryRun) checkConnections(ctx context.Context, db *sql.DB, workers int) {
	var maxConns, used int
	var name string
	need := workers + 2
	err := db.QueryRowContext(ctx, "SELECT @@max_connections").Scan(&maxConns)
	if err == nil && maxConns == 0 {
		// TiDB: 0 is no limit (and it has no Threads_connected).
		d.check("free connections", nil, fmt.Sprintf("max_connections = 0, no limit; this node uses about %d (node.workers + 2)", need), "")
		return
	}
	if err == nil {
		err = db.QueryRowContext(ctx, "SHOW STATUS LIKE 'Threads_connected'").Scan(&name, &used)
	}
	if err == nil && maxConns-used < need {
		err = fmt.Errorf("%d of max_connections %d in use: this node needs about %d", used, maxConns, need)
	}
	d.check("free connections", err, fmt.Sprintf("%d free; this node uses about %d (node.workers + 2)", maxConns-used, need),
		"raise max_connections, or lower node.workers")
}

// checkSource checks each table of one source, as discovered (layout, or
// the error err).
func (d *DryRun) checkSource(ctx context.Context, cfg Config, src meta.SourceDir, layout *source.Layout, err error, t *sink.Target) {
	name := fmt.Sprintf("source %s (%s)", src.ID, src.Dir)
	fix := "check source.dir / [[source.dirs]] and that this host can read it"
	if storage.IsRemote(src.Dir) {
		fix = "check the bucket and prefix in source.dir / [[source.dirs]], and source.s3.* (endpoint, region, credentials)"
	}
	if !d.check(name, err, fmt.Sprintf("%d table(s)", 0), fix) {
		return
	}
	d.Checks[len(d.Checks)-1].Detail = fmt.Sprintf("%d table(s), %d file(s) not used: %s", len(layout.Tables), len(layout.Skipped),
		strings.Join(layout.Skipped, ", "))
	for _, tb := range layout.Tables {
		pt := PlannedTable{Source: src.ID, DB: tb.DB, Table: tb.Name, Files: len(tb.Files)}
		ref := tb.DB + "." + tb.Name
		if t != nil {
			var one int
			err := t.DB().QueryRowContext(ctx, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
				tb.DB, tb.Name).Scan(&one)
			pt.Exists = err == nil
			if pt.Exists && !cfg.Spec.Import.Incremental {
				d.checkEmpty(ctx, t.DB(), ref)
			}
		}
		if tb.SchemaFile == "" && !pt.Exists {
			file := "(no data file)"
			if len(tb.Files) > 0 {
				file = tb.Files[0].Path
			}
			d.check("schema of "+ref, fmt.Errorf("%s: no schema file and no such table in the target", file), "",
				fmt.Sprintf("add %s.%s-schema.sql to the dump, or create the table", tb.DB, tb.Name))
		} else if tb.SchemaFile != "" && !pt.Exists {
			d.checkSchema(ctx, t, tb)
		}
		if tb.SchemaFile != "" && cfg.Spec.Import.DeferIndexes != "off" && !cfg.Spec.Import.Incremental {
			d.checkDeferred(tb)
		}
		if t != nil && pt.Exists && tb.SchemaFile != "" && !cfg.Spec.Import.Incremental {
			d.checkExistingIndexes(ctx, t, tb, cfg.Spec.Import.DeferIndexes != "off")
		}
		var tableChunks []source.Chunk
		for _, f := range tb.Files {
			d.checkFile(f)
			chunks, err := source.Split(f, d.ShardSize, cfg.Spec.Source.CSV)
			if err != nil {
				d.check("split "+f.Path, err, "", "fix the file: its rows can't be read")
				continue
			}
			tableChunks = append(tableChunks, chunks...)
			pt.Shards += len(chunks)
			pt.Bytes += f.Size
		}
		if t != nil && t.IsTiDB() && cfg.Spec.TiDB.PreSplit != "off" {
			pt.PreSplit = dryPreSplit(ctx, cfg, t, tb, tableChunks, pt.Exists)
		}
		d.Tables = append(d.Tables, pt)
		d.Shards += pt.Shards
		d.Bytes += pt.Bytes
	}
}

// checkDeferred reads the schema file's indexes as the plan will: the keys
// left out during the load (docs/table-pipeline.md), and a deferred key
// naming a column the table lacks, which fails the plan.
func (d *DryRun) checkDeferred(tb source.Table) {
	stmt, err := source.ReadSchemaNamed(tb.SchemaFile, tb.Name)
	if err != nil {
		return // checkSchema says so
	}
	def, err := source.ParseCreateTable(stmt)
	if err != nil {
		return // run as written: nothing deferred
	}
	err = def.Defer()
	if err != nil {
		err = fmt.Errorf("%s: %w", tb.SchemaFile, err)
	}
	var names []string
	for _, ix := range def.Deferred() {
		names = append(names, ix.Name)
	}
	detail := "none"
	if len(names) > 0 {
		detail = strings.Join(names, ", ")
	}
	d.check("deferred indexes of "+tb.DB+"."+tb.Name, err, detail, "fix the key in the schema file")
}

// checkExistingIndexes compares an existing table's indexes with its
// schema file's, as the plan will (existingIndexes).
func (d *DryRun) checkExistingIndexes(ctx context.Context, t *sink.Target, tb source.Table, deferOn bool) {
	stmt, err := source.ReadSchemaNamed(tb.SchemaFile, tb.Name)
	if err != nil {
		return // checkSchema says so
	}
	def, err := source.ParseCreateTable(stmt)
	if err != nil {
		return // the plan runs it as written and checks no index
	}
	if deferOn && def.Defer() != nil {
		return // checkDeferred says so
	}
	bad, err := existingIndexes(ctx, t.DB(), tb, def, t.IsTiDB())
	if err == nil && bad != "" {
		err = errors.New(bad)
	}
	d.check("indexes of "+tb.DB+"."+tb.Name, err, "as in "+tb.SchemaFile, existingIndexesFix)
}

func (d *DryRun) checkEmpty(ctx context.Context, db *sql.DB, ref string) {
	db1, tb, _ := strings.Cut(ref, ".")
	var one int
	err := db.QueryRowContext(ctx, "SELECT 1 FROM "+quoteIdent(db1)+"."+quoteIdent(tb)+" LIMIT 1").Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		err = nil
	case err == nil:
		err = fmt.Errorf("target table %s is not empty", ref)
	}
	d.check("empty "+ref, err, "", "empty it, or set import.incremental = true to add to it")
}

// checkSchema has the target's parser check a CREATE TABLE without running
// it: PREPARE parses the statement and executes nothing.
func (d *DryRun) checkSchema(ctx context.Context, t *sink.Target, tb source.Table) {
	stmt, err := source.ReadSchemaNamed(tb.SchemaFile, tb.Name)
	if err == nil && t != nil {
		var conn *sql.Conn
		if conn, err = t.DB().Conn(ctx); err == nil {
			defer conn.Close()
			// Dump schema files name the table unqualified, and its
			// database may not exist yet: qualify the name for the parser.
			_, err = conn.ExecContext(ctx, "PREPARE storm_dry_run FROM ?", qualifyCreate(stmt, tb.DB))
			if err == nil {
				_, _ = conn.ExecContext(ctx, "DEALLOCATE PREPARE storm_dry_run")
			}
		}
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", tb.SchemaFile, err)
	}
	d.check("schema of "+tb.DB+"."+tb.Name, err, tb.SchemaFile, "fix the CREATE TABLE statement in the schema file")
}

var createTable = regexp.MustCompile("(?is)^(\\s*CREATE\\s+TABLE\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?)(`(?:[^`]|``)+`|\\w+)(\\s*\\.)?")

// qualifyCreate puts db in front of the table name of a CREATE TABLE
// statement that names none.
func qualifyCreate(stmt, db string) string {
	m := createTable.FindStringSubmatchIndex(stmt)
	if m == nil || m[6] >= 0 {
		return stmt
	}
	return stmt[:m[3]] + quoteIdent(db) + "." + stmt[m[3]:]
}

func (d *DryRun) checkFile(f source.DataFile) {
	file, err := storage.Open(context.Background(), f.Path, storage.Version{ETag: f.ETag})
	if err == nil {
		_, err = file.Read(make([]byte, 1))
		if err == io.EOF {
			err = nil
		}
		file.Close()
	}
	if err != nil {
		fix := "check the file's permissions and the mount"
		if storage.IsRemote(f.Path) {
			fix = "check source.s3.* (endpoint, credentials) and that this node may read the object"
		}
		d.check("readable "+f.Path, err, "", fix)
	}
}

// Print writes the report for a person.
func (d *DryRun) Print(w io.Writer) {
	fmt.Fprintf(w, "plan of job %s (dry run: nothing written)\n", d.Job)
	for _, c := range d.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s %s", mark, c.Name)
		if c.Detail != "" {
			fmt.Fprintf(w, ": %s", c.Detail)
		}
		fmt.Fprintln(w)
		if !c.OK && c.Fix != "" {
			fmt.Fprintf(w, "     fix: %s\n", c.Fix)
		}
	}
	for _, s := range d.Skipped {
		fmt.Fprintf(w, "not checked here: source %s\n", s)
	}
	size := fmt.Sprintf("%d bytes (%s)", d.ShardSize, jobctl.HumanBytes(d.ShardSize))
	if d.ShardSizeAuto {
		size = "auto: " + size + " (for this node's workers; more nodes joined at plan time make it smaller)"
	}
	fmt.Fprintf(w, "shard size: %s\n", size)
	fmt.Fprintf(w, "shard plan: %d shard(s), %s\n", d.Shards, jobctl.HumanBytes(d.Bytes))
	for _, t := range d.Tables {
		exists := "to create"
		if t.Exists {
			exists = "exists"
		}
		fmt.Fprintf(w, "  %-10s %-40s %3d file(s) %5d shard(s) %10s  %s\n", t.Source, t.DB+"."+t.Table, t.Files, t.Shards, jobctl.HumanBytes(t.Bytes), exists)
		if ps := t.PreSplit; ps != nil {
			fmt.Fprintf(w, "             pre-split: %s\n", describePreSplit(*ps))
		}
	}
}

// dryPreSplit is the pre-split the plan would make. A table that does not
// exist yet has no key to read: the plan decides once it has created it.
func dryPreSplit(ctx context.Context, cfg Config, t *sink.Target, tb source.Table, chunks []source.Chunk, exists bool) *meta.PreSplit {
	ps := meta.PreSplit{DB: tb.DB, Table: tb.Name, Method: meta.PreSplitNone}
	if !exists {
		ps.Why = "decided at plan time, once the table is created from " + tb.SchemaFile
		return &ps
	}
	var one int
	err := t.DB().QueryRowContext(ctx, "SELECT 1 FROM "+quoteIdent(tb.DB)+"."+quoteIdent(tb.Name)+" LIMIT 1").Scan(&one)
	if err == nil {
		ps.Why = "the table has rows: only an empty table is split"
		return &ps
	}
	planned, err := planPreSplit(ctx, t, tb.DB, tb.Name, chunks, cfg.Spec.Source.CSV)
	if err != nil {
		planned.Warning = err.Error()
	}
	return &planned
}

// describePreSplit says in one line what a pre-split does or would do.
func describePreSplit(ps meta.PreSplit) string {
	var s string
	switch ps.Method {
	case meta.PreSplitFirstKeys:
		s = fmt.Sprintf("%d split key(s), the first key of each shard: BY %s", len(ps.By), strings.Join(ps.By, ", "))
	case meta.PreSplitEven:
		s = fmt.Sprintf("%d Regions, evenly: BETWEEN %s REGIONS %d", ps.Regions, ps.Between, ps.Regions)
	default:
		s = "none: " + ps.Why
	}
	if ps.RegionsAfter > 0 {
		s += fmt.Sprintf(" (Regions %d before, %d after)", ps.RegionsBefore, ps.RegionsAfter)
	}
	if ps.Warning != "" {
		s += " (warning: " + ps.Warning + ")"
	}
	return s
}

// checkServers checks each SQL server of a list on its own: the job runs
// with any of them, but one that does not answer carries no load.
func (d *DryRun) checkServers(ctx context.Context, sc sink.Config, hosts []string) {
	if len(hosts) < 2 {
		return
	}
	for _, addr := range hosts {
		one := sc
		one.Addrs = nil
		host, port, err := net.SplitHostPort(addr)
		if err == nil {
			one.Host = host
			one.Port, err = strconv.Atoi(port)
		}
		if err == nil {
			octx, cancel := context.WithTimeout(ctx, 5*time.Second)
			var t *sink.Target
			if t, err = sink.Open(octx, one); err == nil {
				t.Close()
			}
			cancel()
		}
		d.check("SQL server "+addr, err, "answers", "start it, or take it out of target.host")
	}
}
