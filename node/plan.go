package node

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/election"
	"storm/import/checksum"
	"storm/import/source"
	"storm/meta"
)

// maxTxnOps stays below etcd's default --max-txn-ops (128), leaving room for
// the leader guard.
const maxTxnOps = 100

// plan does what the whole job needs once before any source is planned:
// storm's own tables in the target, and the shard size every source is
// split at (see shardSize).
func (n *Node) plan(ctx context.Context, l *election.Leader) (any, error) {
	if err := n.target.EnsureMeta(ctx); err != nil {
		return nil, fmt.Errorf("checkpoint table: %w", err)
	}
	jp := meta.JobPlan{LoadData: n.target.UsesLoadData()}
	for _, src := range n.spec.Source.Sources() {
		jp.Sources = append(jp.Sources, src.ID)
	}
	if err := n.chooseShardSize(ctx, &jp); err != nil {
		return nil, err
	}
	return jp, nil
}

// chooseShardSize fills in the job's shard size: import.shard-size, or for
// "auto" source.AutoShardSize over the data files of the sources this node
// can read and the workers of every node joined so far. A node-local
// source of another node is not counted: its files are not here to size.
// Nodes that join later are not counted either; AutoShardsPerWorker leaves
// them shards to take.
func (n *Node) chooseShardSize(ctx context.Context, jp *meta.JobPlan) error {
	if !n.spec.Import.ShardSize.Auto() {
		jp.ShardSize = int64(n.spec.Import.ShardSize)
		return nil
	}
	jp.ShardSizeAuto = true
	for _, src := range n.spec.Source.Sources() {
		if !src.Readable(n.cfg.NodeID) {
			continue
		}
		layout, err := source.DiscoverWith(src.Dir, n.spec.Source.Routes)
		if err != nil {
			// Its own plan phase fails with the error, naming the source.
			continue
		}
		jp.AutoBytes += dataBytes(layout.Tables)
		n.keepLayout(src.ID, layout)
	}
	resp, err := n.cli.Get(ctx, n.job.Dir(meta.KindNodes), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("read the joined nodes: %w", err)
	}
	self := false
	for _, kv := range resp.Kvs {
		var info meta.NodeInfo
		if meta.Decode(string(kv.Key), kv.Value, &info) != nil {
			continue
		}
		jp.AutoNodes++
		jp.AutoWorkers += max(info.Workers, 1)
		self = self || info.ID == n.cfg.NodeID
	}
	if !self { // not possible after register; keeps the count sane
		jp.AutoNodes++
		jp.AutoWorkers += n.cfg.Workers
	}
	jp.ShardSize = source.AutoShardSize(jp.AutoBytes, jp.AutoWorkers, n.spec.Import.BatchSize)
	n.log.Info("shard size chosen", "shard_size", jp.ShardSize, "data_bytes", jp.AutoBytes,
		"workers", jp.AutoWorkers, "nodes", jp.AutoNodes)
	return nil
}

// keepLayout keeps what the job plan found of a source for the source's
// own plan, when this node leads it next: listing a bucket of many objects
// takes a request per thousand. Only the run goroutine plans; planSources
// drops what is left when the plan is done, so a later plan (another
// attempt) lists afresh.
func (n *Node) keepLayout(id string, l *source.Layout) {
	if n.layouts == nil {
		n.layouts = map[string]*source.Layout{}
	}
	n.layouts[id] = l
}

// discover is the layout of a source: the one the job plan found just
// before, taken once, or a new listing.
func (n *Node) discover(src meta.SourceDir) (*source.Layout, error) {
	if l, ok := n.layouts[src.ID]; ok {
		delete(n.layouts, src.ID)
		return l, nil
	}
	return source.DiscoverWith(src.Dir, n.spec.Source.Routes)
}

// dataBytes is the size of the tables' data files.
func dataBytes(tables []source.Table) int64 {
	var total int64
	for _, t := range tables {
		for _, f := range t.Files {
			total += f.Size
		}
	}
	return total
}

// shardSize is what a source's files are split at: the job plan's, or, with
// a plan marker written before the job plan recorded one, import.shard-size
// or the auto size over this source alone and this node's workers.
func (n *Node) shardSize(jp meta.JobPlan, tables []source.Table) int64 {
	switch {
	case jp.ShardSize > 0:
		return jp.ShardSize
	case !n.spec.Import.ShardSize.Auto():
		return int64(n.spec.Import.ShardSize)
	default:
		return source.AutoShardSize(dataBytes(tables), n.cfg.Workers, n.spec.Import.BatchSize)
	}
}

// planSource returns the work of the phase that plans one source: create
// its databases and tables if missing, check each table once for the whole
// job (see prepareTable), and write the source's shards. A node-local
// source is planned by its node only, whenever that node comes. It is
// idempotent: a leader that dies mid-plan is replaced and the next one
// redoes it; no shard of the source can be claimed before its marker
// exists.
func (n *Node) planSource(src meta.SourceDir, jp meta.JobPlan) election.Func {
	return func(ctx context.Context, l *election.Leader) (any, error) {
		layout, err := n.discover(src)
		if err != nil {
			return nil, election.Fail(fmt.Errorf("source %s (%s): %w", src.ID, src.Dir, err))
		}
		db := n.target.DB()
		for _, d := range layout.Databases {
			if err := n.createDatabase(ctx, db, d); err != nil {
				return nil, err
			}
		}
		sum := meta.PlanSummary{Source: src.ID, Dir: src.Dir, Skipped: layout.Skipped, LoadData: n.target.UsesLoadData(),
			ShardSize: n.shardSize(jp, layout.Tables)}
		split := splitFiles(layout.Tables, sum.ShardSize, n.spec.Source.CSV)
		var shards []meta.Shard
		for _, t := range layout.Tables {
			pt, err := n.prepareTable(ctx, l, db, t)
			if err != nil {
				return nil, err
			}
			headers, err := n.detectHeaders(ctx, t)
			if err != nil {
				return nil, err
			}
			var tableChunks []source.Chunk
			for _, f := range t.Files {
				fs, err := split(f.Path)
				chunks := fs.Chunks
				if err != nil {
					return nil, election.Fail(fmt.Errorf("split %s: %w", f.Path, err))
				}
				if h, ok := headers[f.Path]; ok {
					rel, _ := filepath.Rel(src.Dir, f.Path)
					if h {
						sum.CSVHeader = append(sum.CSVHeader, filepath.ToSlash(rel))
					} else {
						sum.CSVNoHeader = append(sum.CSVNoHeader, filepath.ToSlash(rel))
					}
				}
				if fs.Parquet != nil {
					if err := n.checkParquet(ctx, t, f, fs.Parquet); err != nil {
						return nil, err
					}
				}
				for _, c := range chunks {
					if h, ok := headers[f.Path]; ok {
						c.Header = &h
					}
					end := c.End
					if end < 0 {
						end = f.Size
					}
					bytes := end - c.Start
					if c.Format == source.FormatParquet {
						// Its offsets count rows.
						bytes = c.DataBytes
						c.TimeZone = n.spec.Target.TimeZone
					}
					tableChunks = append(tableChunks, c)
					s := meta.Shard{ID: meta.ShardID(src.ID, t.DB, t.Name, pt.Shards), Source: src.ID,
						DB: t.DB, Table: t.Name, Chunk: c, Bytes: bytes}
					shards = append(shards, s)
					pt.Shards++
					pt.Bytes += s.Bytes
				}
			}
			if n.preSplitOn(pt) { // node/presplit.go
				if err := n.preSplit(ctx, l, &pt, tableChunks); err != nil {
					return nil, err
				}
			}
			sum.Tables = append(sum.Tables, pt)
			sum.Bytes += pt.Bytes
		}
		sum.Shards = len(shards)
		if err := writeShards(ctx, l, n.job, shards); err != nil {
			return nil, fmt.Errorf("write shards of source %s: %w", src.ID, err)
		}
		if err := writeSteps(ctx, l, n.job, layout.Tables); err != nil {
			return nil, fmt.Errorf("write table steps of source %s: %w", src.ID, err)
		}
		n.log.Info("planned", "source", src.ID, "tables", len(sum.Tables), "shards", sum.Shards, "bytes", sum.Bytes,
			"shard_size", sum.ShardSize, "load_data", sum.LoadData)
		return sum, nil
	}
}

// detectHeaders looks at the first line of each CSV file of t when
// source.csv.header is "auto" and says which begin with a header (by
// path). A first line of which some fields name columns and some do not
// fails the plan, naming the file and those fields.
func (n *Node) detectHeaders(ctx context.Context, t source.Table) (map[string]bool, error) {
	cfg := n.spec.Source.CSV
	if !cfg.HeaderAuto {
		return nil, nil
	}
	var cols []string
	out := map[string]bool{}
	for _, f := range t.Files {
		if f.Format != source.FormatCSV {
			continue
		}
		if cols == nil {
			tc, err := n.columns(ctx, t.DB, t.Name)
			if err != nil {
				return nil, err
			}
			for _, c := range tc {
				cols = append(cols, c.Name)
			}
		}
		h, err := source.DetectHeader(f, cfg, cols)
		if err != nil {
			return nil, election.Fail(fmt.Errorf("table %s.%s: %w", t.DB, t.Name, err))
		}
		out[f.Path] = h
	}
	return out, nil
}

// checkParquet fails the plan when a Parquet file of t has a column the
// table lacks, or a DECIMAL of more fraction digits than its column keeps
// (the server would round them away). The file's own columns were checked
// as it was split, which read the footer, info.
func (n *Node) checkParquet(ctx context.Context, t source.Table, f source.DataFile, info *source.ParquetFile) error {
	tcols, err := n.digestColumns(ctx, t.DB, t.Name)
	if err != nil {
		return err
	}
	var bad []string
	for _, c := range info.Columns {
		i := slices.IndexFunc(tcols, func(tc checksum.Column) bool { return strings.EqualFold(tc.Name, c.Name) })
		if i < 0 {
			bad = append(bad, fmt.Sprintf("column %q (Parquet type %s) is not in table %s.%s", c.Name, c.Type, t.DB, t.Name))
			continue
		}
		scale := -1
		switch tc := tcols[i]; tc.DataType {
		case "decimal", "numeric":
			scale = tc.Scale
		case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
			scale = 0
		}
		if c.Scale > 0 && scale >= 0 && c.Scale > scale {
			bad = append(bad, fmt.Sprintf("column %q (Parquet type %s) has %d fraction digits, column %s.%s.%s keeps %d: the rest would be rounded away",
				c.Name, c.Type, c.Scale, t.DB, t.Name, tcols[i].Name, scale))
		}
	}
	if len(bad) > 0 {
		return election.Fail(fmt.Errorf("%s: %s", f.Path, strings.Join(bad, "; ")))
	}
	return nil
}

// splitFiles starts splitting every data file of the tables, as many at
// once as there are CPUs, and returns how to wait for one file's chunks.
// Splitting a CSV file that may quote line breaks reads it whole, so the
// plan of a dump takes about as long as reading its biggest files rather
// than all of them one after the other. A Parquet file's split keeps its
// footer (source.FileSplit), so that the plan reads it once.
func splitFiles(tables []source.Table, shardSize int64, csv source.CSVConfig) func(path string) (source.FileSplit, error) {
	type split struct {
		fs   source.FileSplit
		err  error
		done chan struct{}
	}
	var files []source.DataFile
	splits := map[string]*split{}
	for _, t := range tables {
		for _, f := range t.Files {
			if splits[f.Path] == nil {
				splits[f.Path] = &split{done: make(chan struct{})}
				files = append(files, f)
			}
		}
	}
	// The biggest first, so that they do not end up last.
	sort.SliceStable(files, func(i, j int) bool { return files[i].Size > files[j].Size })
	go func() {
		sem := make(chan struct{}, runtime.GOMAXPROCS(0))
		for _, f := range files {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				sp := splits[f.Path]
				sp.fs, sp.err = source.SplitFile(f, shardSize, csv)
				close(sp.done)
			}()
		}
	}()
	return func(path string) (source.FileSplit, error) {
		sp := splits[path]
		<-sp.done
		return sp.fs, sp.err
	}
}

// writeShards puts the shard definitions in leader-fenced Txns of
// maxTxnOps puts each.
func writeShards(ctx context.Context, l *election.Leader, job meta.Job, shards []meta.Shard) error {
	for i := 0; i < len(shards); i += maxTxnOps {
		var ops []clientv3.Op
		for _, s := range shards[i:min(i+maxTxnOps, len(shards))] {
			ops = append(ops, clientv3.OpPut(job.Shard(s.ID), meta.Encode(s)))
		}
		if err := l.Commit(ctx, ops...); err != nil {
			return err
		}
	}
	return nil
}

// writeSteps puts one table-step item per table (node/steps.go); a table
// several sources write into gets the same item from each.
func writeSteps(ctx context.Context, l *election.Leader, job meta.Job, tables []source.Table) error {
	for i := 0; i < len(tables); i += maxTxnOps {
		var ops []clientv3.Op
		for _, t := range tables[i:min(i+maxTxnOps, len(tables))] {
			ops = append(ops, clientv3.OpPut(job.Key(meta.KindSteps, stepID(t.DB, t.Name)), meta.Encode(meta.TableStep{DB: t.DB, Table: t.Name})))
		}
		if err := l.Commit(ctx, ops...); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) createDatabase(ctx context.Context, db *sql.DB, d source.Database) error {
	var one int
	err := db.QueryRowContext(ctx, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", d.Name).Scan(&one)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("database %s: %w", d.Name, err)
	}
	stmt := "CREATE DATABASE IF NOT EXISTS " + quoteIdent(d.Name)
	if d.SchemaFile != "" {
		if stmt, err = source.ReadSchemaNamed(d.SchemaFile, d.Name); err != nil {
			return election.Fail(err)
		}
	}
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		if isExists(err) {
			return nil
		}
		return election.Fail(fmt.Errorf("create database %s from %s: %w", d.Name, d.SchemaFile, err))
	}
	return nil
}

// prepareTable creates a missing table from its schema file and checks,
// once for the whole job, that it is empty unless the job is incremental.
// The check is recorded under tables/<db>.<table> before any shard that
// writes into the table exists, so a source planned later (another host's
// dump into the same table) finds the record and does not mistake its
// peers' rows for someone else's. With import.defer-indexes = auto, the
// table (created as its schema file says, or found empty) loses its
// deferred indexes after the record that holds their definitions is
// written; node/steps.go builds them back. (On TiDB a table storm creates
// is created without them.)
func (n *Node) prepareTable(ctx context.Context, l *election.Leader, db *sql.DB, t source.Table) (meta.PlanTable, error) {
	pt := meta.PlanTable{DB: t.DB, Table: t.Name}
	key := n.job.Key(meta.KindTables, t.DB+"."+t.Name)
	if rec, ok, err := n.tableRecord(ctx, key); err != nil || ok {
		if ok && err == nil {
			// An earlier leader of this plan recorded the table and died,
			// maybe with its DROP of the deferred indexes queued behind a
			// lock on the table. Run later, that DROP would take away
			// indexes the table's steps built: wait for it to end first.
			if waited, err := n.waitOtherBuild(ctx, meta.TableStep{DB: t.DB, Table: t.Name}); err != nil {
				return rec, err
			} else if waited != "" {
				n.log.Info("waited for an earlier plan leader's ALTER TABLE", "table", t.DB+"."+t.Name, "waited_for", waited)
			}
		}
		return rec, err
	}
	name := quoteIdent(t.DB) + "." + quoteIdent(t.Name)
	deferOn := n.spec.Import.DeferIndexes != "off" && !n.spec.Import.Incremental
	// The schema file says which indexes the table must end with, also
	// when the table exists: one an earlier plan leader created without
	// its deferred indexes before it died.
	var def *source.TableDef
	// The schema file is read once (an object in S3: a HEAD and a GET).
	var schema string
	readSchema := func() (string, error) {
		if schema != "" {
			return schema, nil
		}
		stmt, err := source.ReadSchemaNamed(t.SchemaFile, t.Name)
		if err != nil {
			return "", election.Fail(err)
		}
		schema = stmt
		return stmt, nil
	}
	if t.SchemaFile != "" && !n.spec.Import.Incremental {
		stmt, err := readSchema()
		if err != nil {
			return pt, err
		}
		if def, err = source.ParseCreateTable(stmt); err != nil {
			// Run as written: the server is the judge of its syntax.
			n.log.Warn("the schema file's indexes can't be read: none deferred, none checked", "file", t.SchemaFile, "err", err)
			def = nil
		} else {
			if deferOn {
				if err := def.Defer(); err != nil {
					return pt, election.Fail(fmt.Errorf("%s: table %s: %w", t.SchemaFile, name, err))
				}
				n.keepIgnored(def)
			}
			pt.IndexSource, pt.ForeignKeys = t.SchemaFile, len(def.ForeignKeys)
		}
	}
	var one int
	err := db.QueryRowContext(ctx, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", t.DB, t.Name).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if t.SchemaFile == "" {
			file := "(no data file)"
			if len(t.Files) > 0 {
				file = t.Files[0].Path
			}
			return pt, election.Fail(fmt.Errorf("%s: table %s has no schema file (%s.%s-schema.sql) and does not exist in the target", file, name, t.DB, t.Name))
		}
		stmt, err := readSchema()
		if err != nil {
			return pt, err
		}
		if def != nil && len(def.Deferred()) > 0 && n.target.IsTiDB() {
			// Elsewhere the table is created as written, so that the
			// server refuses a bad key now and not after the load, and
			// loses its deferred indexes below; on TiDB a DROP INDEX is a
			// DDL job that would cost the plan a round per table.
			stmt = def.WithoutDeferred()
		}
		if err := execIn(ctx, db, t.DB, stmt); err != nil && !isExists(err) {
			return pt, election.Fail(fmt.Errorf("create table %s from %s: %w", name, t.SchemaFile, err))
		}
		pt.Created = true
	case err != nil:
		return pt, fmt.Errorf("table %s: %w", name, err)
	}
	if n.spec.Import.Incremental {
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+name).Scan(&pt.InitialRows); err != nil {
			return pt, fmt.Errorf("count %s: %w", name, err)
		}
	} else {
		err = db.QueryRowContext(ctx, "SELECT 1 FROM "+name+" LIMIT 1").Scan(&one)
		switch {
		case err == nil:
			return pt, election.Fail(fmt.Errorf("target table %s is not empty: empty it, or set import.incremental = true to add to it", name))
		case !errors.Is(err, sql.ErrNoRows):
			return pt, fmt.Errorf("check %s is empty: %w", name, err)
		}
		if def == nil && t.SchemaFile == "" {
			// No schema file: the table as it is in the target is the
			// set to end with.
			if def, err = n.targetTableDef(ctx, db, t.DB, t.Name); err != nil {
				return pt, err
			}
			if def != nil && deferOn {
				if err := def.Defer(); err != nil {
					return pt, election.Fail(fmt.Errorf("table %s: %w", name, err))
				}
				n.keepIgnored(def)
			}
			if def != nil {
				pt.IndexSource, pt.ForeignKeys = "target", len(def.ForeignKeys)
			}
		}
		if def != nil {
			pt.Indexes = n.expectedIndexes(def)
		}
		if def != nil && t.SchemaFile != "" && !pt.Created {
			// A table that was there before the job: its indexes must be
			// the schema file's now, before any row is written, rather
			// than after its whole load.
			bad, err := existingIndexes(ctx, db, t, def, n.target.IsTiDB())
			if err != nil {
				return pt, err
			}
			if bad != "" {
				return pt, election.Fail(fmt.Errorf("%s (%s)", bad, existingIndexesFix))
			}
		}
	}
	absent := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	ok, err := l.CommitIf(ctx, []clientv3.Cmp{absent}, clientv3.OpPut(key, meta.Encode(pt)))
	if err != nil {
		return pt, fmt.Errorf("record table %s: %w", name, err)
	}
	if !ok {
		// Another source's plan checked the table first: its record holds.
		rec, _, err := n.tableRecord(ctx, key)
		return rec, err
	}
	// The definitions are in etcd: an existing table may lose its
	// deferred indexes now. A leader that dies before the DROP leaves
	// them in place, and the table's steps find them there.
	if err := n.dropDeferred(ctx, db, t.DB, t.Name, pt.Indexes); err != nil {
		return pt, err
	}
	return pt, nil
}

// existingIndexes compares the indexes of a table that exists before the
// job (empty, not incremental) with its schema file's, def, its deferred
// keys marked, and says how they differ ("" when they agree), naming the
// schema file, the table and each index. A deferred key may be missing:
// the table's steps build it (and a plan leader that died on TiDB, after
// it created the table without them and before it recorded it, left it
// so). A re-plan of a table recorded earlier does not come here: its
// record holds.
func existingIndexes(ctx context.Context, db *sql.DB, t source.Table, def *source.TableDef, tidb bool) (string, error) {
	have, err := targetIndexes(ctx, db, t.DB, t.Name)
	if err != nil {
		return "", err
	}
	var want []source.Index
	for _, ix := range def.Indexes {
		if !ignoredBy(tidb, ix) {
			want = append(want, ix)
		}
	}
	bad := indexDiffs(want, have, len(def.ForeignKeys), "the schema file", func(ix source.Index) bool { return ix.Deferred })
	if len(bad) == 0 {
		return "", nil
	}
	return fmt.Sprintf("%s: table %s.%s exists in the target with other indexes than its schema file's: %s",
		t.SchemaFile, quoteIdent(t.DB), quoteIdent(t.Name), strings.Join(bad, "; ")), nil
}

const existingIndexesFix = "drop the empty table to have storm create it, or make its indexes and the schema file's agree"

// ignoredByTarget: TiDB parses FULLTEXT and SPATIAL keys and makes no
// index of them, from a CREATE TABLE or an ALTER TABLE alike.
func (n *Node) ignoredByTarget(ix source.Index) bool { return ignoredBy(n.target.IsTiDB(), ix) }

func ignoredBy(tidb bool, ix source.Index) bool {
	return tidb && (ix.Kind == source.IndexFulltext || ix.Kind == source.IndexSpatial)
}

// keepIgnored leaves the keys the target ignores in the CREATE TABLE, as
// the schema file has them: nothing to build back.
func (n *Node) keepIgnored(def *source.TableDef) {
	for i := range def.Indexes {
		if n.ignoredByTarget(def.Indexes[i]) {
			def.Indexes[i].Deferred = false
		}
	}
}

// expectedIndexes are the indexes the table must end with: the target
// makes none of those it ignores.
func (n *Node) expectedIndexes(def *source.TableDef) []source.Index {
	var out []source.Index
	for _, ix := range def.Indexes {
		if !n.ignoredByTarget(ix) {
			out = append(out, ix)
		}
	}
	return out
}

// targetTableDef parses the target's SHOW CREATE TABLE.
func (n *Node) targetTableDef(ctx context.Context, db *sql.DB, schema, table string) (*source.TableDef, error) {
	var name, stmt string
	if err := db.QueryRowContext(ctx, "SHOW CREATE TABLE "+quoteIdent(schema)+"."+quoteIdent(table)).Scan(&name, &stmt); err != nil {
		return nil, fmt.Errorf("show create table %s.%s: %w", schema, table, err)
	}
	def, err := source.ParseCreateTable(stmt)
	if err != nil {
		n.log.Warn("the target table's indexes can't be read: none deferred, none checked", "table", schema+"."+table, "err", err)
		return nil, nil
	}
	return def, nil
}

// dropDeferred drops the deferred indexes an existing table has, in one
// ALTER TABLE.
func (n *Node) dropDeferred(ctx context.Context, db *sql.DB, schema, table string, want []source.Index) error {
	var deferred []source.Index
	for _, ix := range want {
		if ix.Deferred {
			deferred = append(deferred, ix)
		}
	}
	if len(deferred) == 0 {
		return nil
	}
	have, err := targetIndexes(ctx, db, schema, table)
	if err != nil {
		return err
	}
	var drops []string
	for _, ix := range deferred {
		if _, ok := have[strings.ToLower(ix.Name)]; ok {
			drops = append(drops, "DROP INDEX "+quoteIdent(ix.Name))
		}
	}
	if len(drops) == 0 {
		return nil
	}
	q := "ALTER TABLE " + quoteIdent(schema) + "." + quoteIdent(table) + " " + strings.Join(drops, ", ")
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("drop the deferred indexes of %s.%s: %w", schema, table, err)
	}
	n.log.Info("deferred indexes dropped from the existing empty table", "table", schema+"."+table, "indexes", len(drops))
	return nil
}

// tableRecord reads a table's record, if some plan wrote it.
func (n *Node) tableRecord(ctx context.Context, key string) (meta.PlanTable, bool, error) {
	var pt meta.PlanTable
	resp, err := n.cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		return pt, false, err
	}
	err = meta.Decode(key, resp.Kvs[0].Value, &pt)
	pt.Shards, pt.Bytes = 0, 0
	return pt, err == nil, err
}

// execIn runs a schema statement with db as the current database: schema
// files name their tables unqualified.
func execIn(ctx context.Context, db *sql.DB, schema, stmt string) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "USE "+quoteIdent(schema)); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, stmt)
	return err
}

// prepare switches a TiDB cluster into import state (see tikv.go); with no
// PD addresses configured there is nothing to switch.
func (n *Node) prepare(ctx context.Context, l *election.Leader) (any, error) {
	return n.prepareTiKV(ctx, l)
}
