package node

import (
	"context"
	"sync"
)

// Result is the outcome of a send: nil when delivered (acknowledged end to
// end where the schema and the peer allow, else transmitted), or a typed
// error. It completes exactly once, on the node's loop.
type Result struct {
	mu   sync.Mutex
	done chan struct{}
	err  error
	fin  bool
	cbs  []func(error)
}

func newResult() *Result { return &Result{done: make(chan struct{})} }

// NewResult returns a pending Result, for layers above the node that
// complete sends of their own (the routing layer's end-to-end receipts).
func NewResult() *Result { return newResult() }

// Complete ends the send with err (nil: success); later calls do nothing.
func (r *Result) Complete(err error) { r.complete(err) }

// failed returns a completed Result.
func failed(err error) *Result {
	r := newResult()
	r.complete(err)
	return r
}

func (r *Result) complete(err error) {
	r.mu.Lock()
	if r.fin {
		r.mu.Unlock()
		return
	}
	r.fin, r.err = true, err
	cbs := r.cbs
	r.cbs = nil
	close(r.done)
	r.mu.Unlock()
	for _, f := range cbs {
		f(err)
	}
}

// Done is closed when the send completes.
func (r *Result) Done() <-chan struct{} { return r.done }

// Err is the outcome (nil before Done is closed, and on success).
func (r *Result) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Finished reports whether the send completed.
func (r *Result) Finished() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fin
}

// OnDone calls f with the outcome when the send completes (at once if it
// has). In a simulation, where nothing may block, this is how to wait.
func (r *Result) OnDone(f func(error)) {
	r.mu.Lock()
	if r.fin {
		err := r.err
		r.mu.Unlock()
		f(err)
		return
	}
	r.cbs = append(r.cbs, f)
	r.mu.Unlock()
}

// Wait blocks until the send completes or ctx ends (for real-time callers
// off the node's loop).
func (r *Result) Wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}
