package source

import (
	"strings"
	"testing"
)

func TestAutoShardSize(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name    string
		bytes   int64
		workers int
		batch   int
		want    int64
	}{
		// The bench's dump of 3,000,000 rows (about 370 MB) on one node of
		// 4 workers: 11 MB a shard would be below the floor, so 16 MiB,
		// and its 160 MB table is 10 shards instead of one.
		{"bench dump, one node", 370_000_000, 4, 4 * mib, 16 * mib},
		{"small dump: the floor", 10 * mib, 4, 4 * mib, 16 * mib},
		{"empty dump: the floor", 0, 4, 4 * mib, 16 * mib},
		{"no workers counted: as one", 0, 0, 4 * mib, 16 * mib},
		// 20 GiB over 4 workers: 8 shards each of 640 MiB would exceed the
		// cap.
		{"big dump, one node: the cap", 20 << 30, 4, 4 * mib, 256 * mib},
		// The same over 5 nodes of 4: 128 MiB a shard, 160 shards.
		{"big dump, five nodes", 20 << 30, 20, 4 * mib, 128 * mib},
		{"rounded up to a MiB", 24 * (20*mib + 1000), 3, 4 * mib, 21 * mib},
		// Big batches raise the floor: a shard holds at least 4 of them.
		{"big batches", 100 * mib, 4, 8 * mib, 32 * mib},
		{"huge batches lift the cap", 1 << 40, 4, 128 * mib, 512 * mib},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := AutoShardSize(c.bytes, c.workers, c.batch)
			if got != c.want {
				t.Fatalf("AutoShardSize(%d, %d, %d) = %d (%d MiB), want %d (%d MiB)", c.bytes, c.workers, c.batch, got, got/mib, c.want, c.want/mib)
			}
			if got%mib != 0 {
				t.Fatalf("%d is not a whole MiB", got)
			}
		})
	}
}

// Whatever the job, every worker gets several shards of a big enough job,
// and the shard count stays O(bytes / floor).
func TestAutoShardSizeKeepsWorkersBusy(t *testing.T) {
	for _, workers := range []int{1, 2, 4, 12, 64} {
		for _, total := range []int64{1 << 30, 10 << 30, 100 << 30} {
			size := AutoShardSize(total, workers, 4<<20)
			shards := (total + size - 1) / size
			between := size > AutoShardFloor && size < AutoShardCap
			if between && shards < int64(workers*AutoShardsPerWorker) {
				t.Errorf("%d bytes, %d workers: size %d gives %d shards, fewer than %d per worker", total, workers, size, shards, AutoShardsPerWorker)
			}
			if between && shards > int64(workers*AutoShardsPerWorker) {
				t.Errorf("%d bytes, %d workers: size %d gives %d shards, more than needed", total, workers, size, shards)
			}
			if size < AutoShardFloor || size > AutoShardCap || shards > total/AutoShardFloor+1 {
				t.Errorf("%d bytes: %d shards of %d bytes, smaller than the floor", total, shards, size)
			}
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"1024", 1024, ""},
		{" 268435456 ", 268435456, ""},
		{"64MiB", 64 << 20, ""},
		{"64 MiB", 64 << 20, ""},
		{"64M", 64 << 20, ""},
		{"64mb", 64 << 20, ""},
		{"512KiB", 512 << 10, ""},
		{"1GiB", 1 << 30, ""},
		{"10B", 10, ""},
		{"", 0, "want a number of bytes"},
		{"auto", 0, "want a number of bytes"},
		{"1.5GiB", 0, "want a number of bytes"},
		{"64Xi", 0, "want a number of bytes"},
		{"64i", 0, "unknown unit"},
		{"9999999999TiB", 0, "too large"},
	} {
		got, err := ParseSize(c.in)
		switch {
		case c.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseSize(%q) = %d, %v; want error %q", c.in, got, err, c.wantErr)
			}
		case err != nil || got != c.want:
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}
