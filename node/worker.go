package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"storm/import/checksum"
	"storm/import/sink"
	"storm/import/source"
	"storm/import/storage"
	"storm/meta"
)

// worker imports shards one at a time: claim, resume from the database
// checkpoint, write fenced batches, record the result.
type worker struct {
	n    *Node
	sess leaseHolder
	log  *slog.Logger
	// loadFn writes a claimed shard and returns what load returns; nil is
	// the data path (load). The coordination simulation (sim_test.go) puts
	// a sink that only sleeps here.
	loadFn func(ctx context.Context, log *slog.Logger, s meta.Shard, epoch int64) (sink.Checkpoint, int64, []string, error)
	// idle holds the writers of the last shard, whose batch buffers the
	// next shard's writers take over (sink.Target.NewWriterFrom).
	idle []*sink.Writer
}

// writer returns a writer for shard s, reusing an idle one's buffers.
func (w *worker) writer(s meta.Shard, cols []string) *sink.Writer {
	var old *sink.Writer
	if k := len(w.idle); k > 0 {
		old, w.idle = w.idle[k-1], w.idle[:k-1]
	}
	wr := w.n.target.NewWriterFrom(old, w.n.job.ID, s.ID, s.Chunk.Path, sink.TableRef{DB: s.DB, Name: s.Table}, cols)
	// A batch ends with the row that reaches the batch size: room for a
	// long last row too. A shard smaller than a batch gets room for its
	// own bytes; a compressed one's text is longer, and the buffer grows
	// to it once, since the next shard keeps it.
	wr.Reserve(int(min(int64(w.n.spec.Import.BatchSize), s.Bytes)) + 64<<10)
	return wr
}

type leaseHolder interface {
	Lease() clientv3.LeaseID
}

func (w *worker) run(ctx context.Context, v *view[meta.Shard]) error {
	for {
		_, s, ok := v.next(ctx)
		if !ok {
			return nil
		}
		start := time.Now()
		epoch, ok, err := meta.ClaimShard(ctx, w.n.cli, w.n.job, s.ID, w.n.cfg.NodeID, w.sess.Lease())
		w.n.metrics.observeEtcd("claim", time.Since(start))
		if err != nil {
			return err
		}
		if !ok {
			continue // a peer was faster; the view will tell us if it dies
		}
		w.n.metrics.claims.Add(1)
		if err := w.shard(ctx, s, epoch); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

// shard imports one claimed shard. It returns an error only for problems
// that should stop the node (etcd unreachable); a shard's own failure is
// recorded under failed/ and the worker goes on.
func (w *worker) shard(ctx context.Context, s meta.Shard, epoch int64) error {
	log := w.log.With("shard", s.ID, "table", s.DB+"."+s.Table, "epoch", epoch)
	start := time.Now()
	load := w.load
	if w.loadFn != nil {
		load = w.loadFn
	}
	cp, rows, dcols, err := load(ctx, log, s, epoch)
	switch {
	case err == nil:
	case errors.Is(err, sink.ErrFenced):
		// Usually a peer owns the shard now and the release is a no-op (it
		// is guarded by our epoch). But a fence can also refuse an owner
		// whose claim still stands (its checkpoint is not where it
		// expected); then only releasing lets anyone take the shard on
		// from the committed checkpoint before this node's lease ends.
		log.Warn("shard taken over by another node; dropping it", "err", err)
		w.release(s, epoch)
		return nil
	case ctx.Err() != nil:
		w.release(s, epoch)
		return ctx.Err()
	case isPermanent(err):
		log.Error("shard failed", "err", err)
		f := meta.Failed{Shard: s.ID, File: s.Chunk.Path, Reason: err.Error(), Node: w.n.cfg.NodeID, At: time.Now().UTC()}
		var pe *source.ParseError
		var re *sink.RowError
		switch {
		case errors.As(err, &pe):
			f.Line = pe.Line
		case errors.As(err, &re):
			f.Line = re.Line
		}
		_, ferr := meta.FailShard(ctx, w.n.cli, w.n.job, s.ID, epoch, f)
		return ferr
	default:
		// The database stayed unreachable past the retry budget: hand the
		// shard back and let whoever can reach it go on.
		log.Warn("shard interrupted; releasing it", "err", err)
		w.release(s, epoch)
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
		}
		return nil
	}
	secs := time.Since(start).Seconds()
	d := meta.Done{
		DB: s.DB, Table: s.Table, Rows: cp.Rows, Bytes: s.Bytes,
		DigestCount: cp.DigestCount, DigestXOR: checksum.Digest{XOR: cp.DigestXOR}.Hex(), DigestColumns: dcols,
		Node: w.n.cfg.NodeID, Epoch: epoch, Seconds: secs, At: time.Now().UTC(),
	}
	if _, err := meta.CompleteShard(ctx, w.n.cli, w.n.job, s.ID, epoch, d); err != nil {
		return err
	}
	log.Info("shard done", "rows", rows, "total_rows", cp.Rows, "seconds", fmt.Sprintf("%.2f", secs),
		"mb_per_s", fmt.Sprintf("%.1f", float64(s.Bytes)/1e6/max(secs, 1e-9)))
	return nil
}

func (w *worker) release(s meta.Shard, epoch int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := meta.ReleaseShard(ctx, w.n.cli, w.n.job, s.ID, epoch); err != nil {
		w.log.Debug("release failed; the lease will free the shard", "shard", s.ID, "err", err)
	}
}

func isPermanent(err error) bool {
	if errors.Is(err, storage.ErrUnavailable) {
		// The object store stayed unreachable past its retry budget: a
		// peer, or this node later, takes the shard on from its checkpoint.
		return false
	}
	var pe *source.ParseError
	var re *sink.RowError
	var ie *inputError
	return errors.As(err, &pe) || errors.As(err, &re) || errors.As(err, &ie) || sink.ServerRefused(err)
}

// inputError is a problem with the source data that retrying cannot fix.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// load writes the shard's remaining rows and returns its final checkpoint,
// how many rows this call wrote, and the columns its digest covers.
func (w *worker) load(ctx context.Context, log *slog.Logger, s meta.Shard, epoch int64) (sink.Checkpoint, int64, []string, error) {
	n := w.n
	cp, err := n.target.Acquire(ctx, n.job.ID, s.ID, epoch)
	if err != nil {
		return cp, 0, nil, err
	}
	n.metrics.acquired(cp) // a takeover: node/metrics.go
	if cp.Finished {
		log.Info("shard already committed by a previous owner; recording it")
		cols, err := n.peekColumns(ctx, s)
		if err != nil {
			return cp, 0, nil, &inputError{fmt.Errorf("shard %s: %w", s.ID, err)}
		}
		return cp, 0, cols, nil
	}
	return w.write(ctx, log, s, cp)
}

// write loads the shard's rows from the checkpoint on.
func (w *worker) write(ctx context.Context, log *slog.Logger, s meta.Shard, cp sink.Checkpoint) (sink.Checkpoint, int64, []string, error) {
	n := w.n
	if cp.NextOffset > 0 {
		log.Info("resuming shard from checkpoint", "offset", cp.NextOffset, "line", cp.NextLine, "rows", cp.Rows)
	}
	tableCols, err := n.columns(ctx, s.DB, s.Table)
	if err != nil {
		return cp, 0, nil, err
	}
	r, err := source.OpenChunk(s.Chunk, n.spec.Source.CSV, cp.NextOffset, cp.NextLine)
	if err != nil {
		return cp, 0, nil, &inputError{fmt.Errorf("shard %s: %w", s.ID, err)}
	}
	defer r.Close()

	var (
		// Batches alternate between two writers: while one commits in the
		// background, the worker reads and hashes the next batch into the
		// other, so the target never waits for storm's parsing and storm
		// never waits for the target's insert. At most one batch is in
		// flight, and it commits before the next one starts: the fence
		// chain stays as strict as with one writer.
		wr, spare *sink.Writer
		inflight  chan flushed
		cols      []string
		dg        *rowDigester
		dcols     []string
		written   int64
		lastSent  = time.Now()
		batch     = n.spec.Import.BatchSize
		// Only digest verification compares the source rows' hashes; with
		// verify.mode off or count the rows are not hashed (done/ records
		// a digest XOR of 0), which saves most of storm's own CPU per row.
		hashRows = n.spec.Verify.Mode == "" || n.spec.Verify.Mode == meta.VerifyDigest
		// pos is where the rows read so far end; cp stays what the target
		// has committed, the fence of the next batch.
		pos = cp
	)
	if enc, ok := r.(source.TSVEncoder); ok && !hashRows {
		// Nothing needs the values themselves: the reader writes each
		// row as LOAD DATA text in the pass that parses it.
		enc.EncodeTSV()
	}
	// collect waits for the batch in flight and books it.
	collect := func() error {
		if inflight == nil {
			return nil
		}
		f := <-inflight
		inflight = nil
		if f.err != nil {
			return f.err
		}
		res := f.res
		written += f.rows - int64(res.Rejected)
		n.metrics.bytes.Add(doneBytes(s, res.Checkpoint.NextOffset) - doneBytes(s, cp.NextOffset))
		cp = res.Checkpoint
		if res.Parts > 1 {
			log.Warn("batch split to fit the target's transaction size limit; a smaller import.batch-size saves the retries",
				"transactions", res.Parts, "batch_bytes", batch)
		}
		if res.Rejected > 0 {
			log.Warn("rows rejected by the target, recorded in storm_meta.rejected", "rows", res.Rejected)
		}
		n.metrics.rows.Add(f.rows - int64(res.Rejected))
		n.metrics.batches.Add(1)
		if time.Since(lastSent) > n.cfg.ProgressInterval {
			lastSent = time.Now()
			n.putProgress(ctx, s.ID, cp.Rows, doneBytes(s, cp.NextOffset))
		}
		return nil
	}
	// A batch still in flight when the shard ends early must not outlive
	// it; then both writers are idle, and the next shard reuses them.
	defer func() {
		if inflight != nil {
			<-inflight
		}
		if wr != nil {
			w.idle = append(w.idle[:0], wr, spare)
		}
	}()
	// flush starts committing the rows read so far, once the batch before
	// them has committed; final waits for it too.
	flush := func(final bool) error {
		if err := collect(); err != nil {
			return err
		}
		next := pos
		next.Finished = final
		if wr == nil {
			if err := n.target.Finish(ctx, cp, next); err != nil {
				return err
			}
			cp.NextOffset, cp.NextLine, cp.Finished = next.NextOffset, next.NextLine, next.Finished
			return nil
		}
		out, from, rows := wr, cp, int64(wr.PendingRows())
		ch := make(chan flushed, 1)
		go func() {
			res, err := out.Flush(ctx, from, next)
			ch <- flushed{res: res, err: err, rows: rows}
		}()
		inflight = ch
		wr, spare = spare, out
		if final {
			return collect()
		}
		return nil
	}
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return cp, written, dcols, &inputError{fmt.Errorf("shard %s: %w", s.ID, err)}
		}
		if rc := r.Columns(); wr == nil || !sameColumns(rc, cols) {
			if wr != nil && wr.PendingRows() > 0 {
				if err := flush(false); err != nil {
					return cp, written, dcols, err
				}
			}
			cols = append(cols[:0:0], rc...)
			if err := checkColumns(cols, tableCols); err != nil {
				return cp, written, dcols, &inputError{fmt.Errorf("%s:%d: %w", s.Chunk.Path, row.Line, err)}
			}
			// The batch in flight, if any, keeps its own writer.
			wr, spare = w.writer(s, cols), w.writer(s, cols)
			if dg, err = n.newDigester(ctx, s.DB, s.Table, cols); err != nil {
				return cp, written, dcols, err
			}
			switch {
			case dcols == nil:
				dcols = dg.cols
			case !sameColumns(dcols, dg.cols):
				dcols = []string{mixedColumns}
			}
		}
		want := len(tableCols)
		if cols != nil {
			want = len(cols)
		}
		if row.Len() != want {
			return cp, written, dcols, &inputError{&source.ParseError{File: s.Chunk.Path, Line: row.Line, Offset: row.End,
				Reason: fmt.Sprintf("row has %d fields, table %s.%s expects %d", row.Len(), s.DB, s.Table, want)}}
		}
		var h uint64
		if hashRows {
			h = dg.hash(row.Values)
		}
		wr.Add(row, h)
		pos.NextOffset, pos.NextLine = row.End, row.NextLine
		if wr.Pending() >= batch {
			if err := flush(false); err != nil {
				return cp, written, dcols, err
			}
		}
	}
	if err := flush(true); err != nil {
		return cp, written, dcols, err
	}
	return cp, written, dcols, nil
}

// doneBytes is how many of the shard's source bytes lie before offset
// off. A Parquet chunk's offsets count rows: its bytes are shared evenly
// among them.
func doneBytes(s meta.Shard, off int64) int64 {
	off = max(off, s.Chunk.Start)
	if s.Chunk.Format != source.FormatParquet {
		return off - s.Chunk.Start
	}
	rows := s.Chunk.End - s.Chunk.Start
	if rows <= 0 {
		return 0
	}
	return int64(float64(s.Bytes) * float64(off-s.Chunk.Start) / float64(rows))
}

// flushed is how a batch committed in the background went.
type flushed struct {
	res  sink.Result
	err  error
	rows int64
}

func sameColumns(a, b []string) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkColumns names the source columns the table lacks.
func checkColumns(cols []string, table []sink.Column) error {
	if cols == nil {
		return nil
	}
	have := map[string]bool{}
	for _, c := range table {
		have[strings.ToLower(c.Name)] = true
	}
	var missing []string
	for _, c := range cols {
		if !have[strings.ToLower(c)] {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("column(s) %s not in the target table", strings.Join(missing, ", "))
	}
	return nil
}
