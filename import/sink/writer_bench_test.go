package sink

import (
	"testing"

	"storm/import/source"
)

// BenchmarkWriterBatch fills one 4 MiB batch, as a worker does, with a
// writer of its own per batch (what a fresh pair per shard amounts to) and
// with one that took over the last writer's buffers (NewWriterFrom).
func BenchmarkWriterBatch(b *testing.B) {
	const batch = 4 << 20
	r := source.Row{Values: []source.Value{
		{Data: []byte("1234567"), Plain: true},
		{Data: []byte("2024-01-02 03:04:05"), Plain: true},
		{Data: []byte("some text, with \"quotes\"\tand a tab")},
		{Data: []byte("12345.6789"), Plain: true},
	}}
	t := &Target{}
	fill := func(w *Writer) {
		for w.Pending() < batch {
			w.Add(r, 0)
		}
	}
	b.Run("fresh", func(b *testing.B) {
		b.SetBytes(batch)
		for b.Loop() {
			fill(t.NewWriter("j", "s", "f", TableRef{DB: "d", Name: "t"}, nil))
		}
	})
	b.Run("reused", func(b *testing.B) {
		b.SetBytes(batch)
		var w *Writer
		for b.Loop() {
			w = t.NewWriterFrom(w, "j", "s", "f", TableRef{DB: "d", Name: "t"}, nil)
			w.Reserve(batch + 64<<10)
			fill(w)
		}
	})
}
