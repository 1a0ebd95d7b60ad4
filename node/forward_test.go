package node

import (
	"context"
	"sync"
	"testing"
	"time"
)

// changer stands for a view: change closes the channel waiters hold and
// makes a new one, as view.notify does.
type changer struct {
	mu sync.Mutex
	ch chan struct{}
}

func (c *changer) changes() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

func (c *changer) change() {
	c.mu.Lock()
	close(c.ch)
	c.ch = make(chan struct{})
	c.mu.Unlock()
}

// A change made while forwardChanges pauses after the call before is
// forwarded when the pause ends: the last change of a job (its last
// table's steps done) must wake the verify workers, not wait for some
// later, unrelated change.
func TestForwardChangesKeepsAChangeMadeInThePause(t *testing.T) {
	c := &changer{ch: make(chan struct{})}
	calls := make(chan time.Time, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const pause = 200 * time.Millisecond
	go forwardChanges(ctx, pause, c.changes, func() { calls <- time.Now() })
	wait := func(what string) time.Time {
		t.Helper()
		select {
		case at := <-calls:
			return at
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: never forwarded", what)
			return time.Time{}
		}
	}
	last := wait("the first call, for what changed before it started")
	for i := range 2 {
		c.change() // inside the pause that follows the last call
		at := wait("a change made during the pause")
		if d := at.Sub(last); d < pause {
			t.Errorf("change %d forwarded %v after the call before: the pause of %v was not kept", i, d, pause)
		}
		last = at
	}
	select {
	case <-calls:
		t.Error("a call with no change behind it")
	case <-time.After(3 * pause):
	}
}
