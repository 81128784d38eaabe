package node

import (
	"context"
	"errors"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
)

// ErrNotLoop: Run needs the node's clock to be a *clock.Loop (a node on a
// virtual clock is driven by whoever runs that clock).
var ErrNotLoop = errors.New("node: Run needs Config.Clock to be a *clock.Loop")

// ErrStarted: Run was called on a node already started or closed.
var ErrStarted = errors.New("node: already started")

// Run is a node's life in the field: it runs the node's clock.Loop (which
// no one else may run), starts the node on it (links attached, beacons),
// and when ctx ends says goodbye on every link, waits until the goodbye has
// left (at most GoodbyeWait), closes the node and stops the loop. It
// returns nil after that clean shutdown, or the loop's error. Other
// goroutines reach the running node with Do, and wait for sends with
// Result.Wait. The links stay open: their owner closes them after Run
// returns.
func (n *Node) Run(ctx context.Context) error {
	loop, ok := n.clk.(*clock.Loop)
	if !ok {
		return ErrNotLoop
	}
	if loop.Running() {
		return clock.ErrRunning
	}
	loopCtx, stopLoop := context.WithCancel(context.Background())
	defer stopLoop()
	started := make(chan error, 1)
	loop.AfterFunc(0, func() {
		if n.started || n.closed {
			started <- ErrStarted
			return
		}
		n.Start()
		started <- nil
	})
	ran := make(chan error, 1)
	go func() { ran <- loop.Run(loopCtx) }()
	var err error
	select {
	case err = <-started:
	case err = <-ran: // another goroutine runs the loop
		return err
	}
	if err != nil {
		stopLoop()
		<-ran
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-ran:
		return err
	}
	closed := make(chan struct{})
	loop.AfterFunc(0, func() { n.shutdown(GoodbyeWait, func() { close(closed) }) })
	<-closed
	stopLoop()
	if err := <-ran; !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// GoodbyeWait bounds how long Run waits for the goodbye to leave before it
// closes the node anyway (a link that never completes, a LoRa duty-cycle
// budget spent).
const GoodbyeWait = 5 * time.Second

// shutdown says goodbye, then closes the node once every link has sent it
// or wait has passed, and calls done. On the loop.
func (n *Node) shutdown(wait time.Duration, done func()) {
	if !n.started || n.closed || n.byeSent {
		n.Close()
		done()
		return
	}
	rs := n.sendDisconnect()
	finished := false
	var tmr clock.Timer
	finish := func() {
		if finished {
			return
		}
		finished = true
		if tmr != nil {
			tmr.Stop()
		}
		n.Close()
		done()
	}
	left := len(rs)
	for _, r := range rs {
		r.OnDone(func(error) {
			left--
			if left == 0 {
				finish()
			}
		})
	}
	if !finished {
		tmr = n.clk.AfterFunc(wait, finish)
	}
}
