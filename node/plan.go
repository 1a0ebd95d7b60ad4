package node

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/election"
	"storm/import/source"
	"storm/meta"
)

// sourceID names the job's one source directory in shard ids.
const sourceID = "main"

// maxTxnOps stays below etcd's default --max-txn-ops (128), leaving room for
// the leader guard.
const maxTxnOps = 100

// plan creates the target schema, checks once that the tables are empty, and
// writes the shard definitions. It is idempotent: a leader that dies
// mid-plan is replaced and the next one redoes it; no shard can be claimed
// before the plan marker exists, so the tables are still as they were.
func (n *Node) plan(ctx context.Context, l *election.Leader) (any, error) {
	if err := n.target.EnsureMeta(ctx); err != nil {
		return nil, fmt.Errorf("checkpoint table: %w", err)
	}
	layout, err := source.Discover(n.spec.Source.Dir)
	if err != nil {
		return nil, election.Fail(fmt.Errorf("source %s: %w", n.spec.Source.Dir, err))
	}
	db := n.target.DB()
	for _, d := range layout.Databases {
		if err := n.createDatabase(ctx, db, d); err != nil {
			return nil, err
		}
	}
	sum := meta.PlanSummary{Skipped: layout.Skipped, LoadData: n.target.UsesLoadData()}
	var shards []meta.Shard
	for _, t := range layout.Tables {
		pt, err := n.prepareTable(ctx, db, t)
		if err != nil {
			return nil, err
		}
		for _, f := range t.Files {
			chunks, err := source.Split(f, n.spec.Import.ShardSize, n.spec.Source.CSV)
			if err != nil {
				return nil, election.Fail(fmt.Errorf("split %s: %w", f.Path, err))
			}
			for _, c := range chunks {
				end := c.End
				if end < 0 {
					end = f.Size
				}
				s := meta.Shard{ID: meta.ShardID(sourceID, t.DB, t.Name, pt.Shards), Source: sourceID,
					DB: t.DB, Table: t.Name, Chunk: c, Bytes: end - c.Start}
				shards = append(shards, s)
				pt.Shards++
				pt.Bytes += s.Bytes
			}
		}
		sum.Tables = append(sum.Tables, pt)
		sum.Bytes += pt.Bytes
	}
	sum.Shards = len(shards)
	for i := 0; i < len(shards); i += maxTxnOps {
		var ops []clientv3.Op
		for _, s := range shards[i:min(i+maxTxnOps, len(shards))] {
			ops = append(ops, clientv3.OpPut(n.job.Shard(s.ID), meta.Encode(s)))
		}
		if err := l.Commit(ctx, ops...); err != nil {
			return nil, fmt.Errorf("write shards: %w", err)
		}
	}
	n.log.Info("planned", "tables", len(sum.Tables), "shards", sum.Shards, "bytes", sum.Bytes, "load_data", sum.LoadData)
	return sum, nil
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
		if stmt, err = source.ReadSchema(d.SchemaFile); err != nil {
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

// prepareTable creates a missing table from its schema file and checks, once
// for the whole job, that it is empty unless the job is incremental.
func (n *Node) prepareTable(ctx context.Context, db *sql.DB, t source.Table) (meta.PlanTable, error) {
	pt := meta.PlanTable{DB: t.DB, Table: t.Name}
	name := quoteIdent(t.DB) + "." + quoteIdent(t.Name)
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
		stmt, err := source.ReadSchema(t.SchemaFile)
		if err != nil {
			return pt, election.Fail(err)
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
		return pt, nil
	}
	err = db.QueryRowContext(ctx, "SELECT 1 FROM "+name+" LIMIT 1").Scan(&one)
	switch {
	case err == nil:
		return pt, election.Fail(fmt.Errorf("target table %s is not empty: empty it, or set import.incremental = true to add to it", name))
	case !errors.Is(err, sql.ErrNoRows):
		return pt, fmt.Errorf("check %s is empty: %w", name, err)
	}
	return pt, nil
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

// prepare is where TiKV import mode and PD scheduler pauses go; with no PD
// addresses configured there is nothing to switch.
func (n *Node) prepare(ctx context.Context, l *election.Leader) (any, error) {
	return map[string]string{"tikv": "not configured: no tidb.pd-addrs"}, nil
}
