package source

import (
	"fmt"
	"strconv"
	"strings"
)

// The bounds of an automatic shard size (AutoShardSize).
const (
	// AutoShardsPerWorker is how many shards each worker should get of a
	// job's bytes. More than one, so that the tail of the import (the last
	// shards, while other workers have run out) is short, and so that
	// nodes that join after the plan still find work; not many more,
	// since each shard costs a claim and a done record in etcd and a
	// checkpoint in the target.
	AutoShardsPerWorker = 8
	// AutoShardFloor is the smallest automatic shard: the per-shard cost
	// stays a few percent of a shard's time. A shard costs two etcd
	// transactions (claim, done), a share of the plan's (100 shards a
	// transaction), a checkpoint transaction in the target, and a first
	// batch that nothing overlaps. Measured on a loaded 2-core host, one
	// worker, a 65 MB file at 2 to 64 MiB a shard: 2-4 ms a shard between
	// one shard's end and the next one's start, and no difference in the
	// import's time (2.6-4.8 s, all noise) between 1 and 32 shards; one
	// 16 MiB shard is about 0.75 s of that worker.
	AutoShardFloor = 16 << 20
	// AutoShardCap is the largest: one shard of a huge job is still
	// minutes of one worker's time, not hours, and a job of a terabyte is
	// about 4,000 shards, well within what etcd and the digest handle.
	AutoShardCap = 256 << 20
	// autoBatchesPerShard: a shard should hold a few batches, so a
	// worker's two writers overlap reading one batch with committing the
	// other for most of it.
	autoBatchesPerShard = 4
)

// AutoShardSize is the shard size import.shard-size = "auto" picks for a job
// of totalBytes of data files run by workers workers in all (every joined
// node's node.workers), with batchSize bytes a transaction: about
// AutoShardsPerWorker shards per worker, at least AutoShardFloor (and
// autoBatchesPerShard batches), at most AutoShardCap, rounded up to a whole
// MiB. Files smaller than the size stay one shard, so a dump of small files
// keeps a shard per file.
func AutoShardSize(totalBytes int64, workers, batchSize int) int64 {
	floor := max(int64(AutoShardFloor), autoBatchesPerShard*int64(batchSize))
	ceil := max(int64(AutoShardCap), floor)
	workers = max(workers, 1)
	size := totalBytes / int64(workers*AutoShardsPerWorker)
	size = min(max(size, floor), ceil)
	const mib = 1 << 20
	return (size + mib - 1) / mib * mib
}

// ParseSize reads a byte size as config keys take it: a number of bytes, or
// one with a unit (KiB, MiB, GiB; K, M, G and KB, MB, GB mean the same
// powers of 1024).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRight(t, "KMGTiBkmgtib ")
	unit := strings.ToUpper(strings.TrimSpace(t[len(num):]))
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with KiB, MiB or GiB", s)
	}
	mult := int64(1)
	switch strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I") {
	case "":
		if unit != "" && unit != "B" {
			return 0, fmt.Errorf("size %q: unknown unit %q", s, unit)
		}
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	case "T":
		mult = 1 << 40
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q", s, unit)
	}
	if n > 0 && n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}
