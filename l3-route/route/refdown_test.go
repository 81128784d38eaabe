package route

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// TestSendToReferenceThatDiesEndsInTime: a large send to a reference
// board behind a proxy that loses power mid-transfer ends with a typed
// error in bounded time (the virtual HIL rack's reset/node-sender, on its
// timing: claims every second, beacons every 2 s, give-up 8 s).
func TestSendToReferenceThatDiesEndsInTime(t *testing.T) {
	rc := Config{ReceiptTimeout: 3 * time.Second, RegisterQuiet: 500 * time.Millisecond, RegisterMax: 2 * time.Second, RegisterSpread: 200 * time.Millisecond}
	tc := tree.Config{Trees: 2, ClaimPeriod: time.Second}
	const giveUp = 8 * time.Second
	for _, seed := range []uint64{1, 2, 3, 4, 5, 6} {
		// The board goes as the send starts, or a few of the Package's
		// frames in (10 KiB take some 100 ms of ESP-NOW air).
		for _, cut := range []time.Duration{0, 30 * time.Millisecond} {
			me := newHMesh(t, tc, seed)
			me.add(hspec{rcfg: rc, beacon: 2 * time.Second, giveUp: giveUp})
			me.add(hspec{rcfg: rc, beacon: 2 * time.Second, giveUp: giveUp})
			ref := me.add(hspec{ref: true, beacon: 2 * time.Second, giveUp: giveUp})
			me.edges([][2]int{{0, 1}, {0, ref}, {1, ref}})
			me.start()
			me.mustConverge(10 * time.Minute)
			me.mustRegister(time.Minute)
			if !me.run(5*time.Minute, func() bool { return me.stored(ref) }) {
				t.Fatalf("seed %d: the reference node's record was never stored", seed)
			}
			sender := me.nodes[0].rt
			R := me.nodes[ref]
			// A round: max(Attempts, trees) tries, each
			// waiting at most the receipt timeout and a pause after no
			// route of at most two claim periods; the bound, a round on each
			// way the send learns and the lookup afresh
			// (the hop to the board gives up within the give-up time,
			// which is shorter than the round).
			tries := time.Duration(max(sender.Config().Attempts, tc.Trees))
			round := tries * (rc.ReceiptTimeout + 2*tc.ClaimPeriod)
			for i := range 3 {
				if err := me.wait(sender.Send(R.n.ID(), testApp, []byte{byte(i), 1, 2, 3}, nil), time.Minute); err != nil {
					t.Fatalf("seed %d: to the reference node while it is up: %v", seed, err)
				}
			}
			blob := make([]byte, 10<<10)
			blob[0] = byte(seed)
			start := me.clk.Now()
			before := sender.Stats().Originated
			res := sender.Send(R.n.ID(), testApp, blob, nil)
			me.clk.RunFor(cut)
			R.n.Close()
			for _, nb := range R.radios["espnow"].Neighbors() {
				me.media["espnow"].Disconnect(R.radios["espnow"], nb)
			}
			// The ways the send may take: the addresses the sender holds
			// for the board, as each lookup leaves them (both proxies
			// lease it an address; the record names whichever
			// registered last).
			var ways [][]TreeAddr
			seen := func() {
				c := sender.cache[R.n.ID()]
				if c == nil {
					return
				}
				for _, w := range ways {
					if slices.Equal(w, c.d.Addrs) {
						return
					}
				}
				ways = append(ways, slices.Clone(c.d.Addrs))
			}
			seen()
			me.run(10*time.Minute, func() bool { seen(); return res.Finished() })
			took := me.clk.Now().Sub(start)
			err := res.Err()
			t.Logf("seed %d cut %v: %v after %v", seed, cut, err, took)
			if !res.Finished() || !(errors.Is(err, node.ErrNoRoute) || errors.Is(err, node.ErrAbandoned) || errors.Is(err, ErrNoCommonTree) || errors.Is(err, ErrUnknownNode)) {
				t.Errorf("seed %d cut %v: the send ended %v after %v", seed, cut, err, took)
			}
			var re *node.RemoteError
			if errors.As(err, &re) && re.From == "" {
				t.Errorf("seed %d cut %v: %v: the reporter is unnamed", seed, cut, err)
			}
			// One round of tries on each way: the lookup afresh finds
			// the same addresses (the proxy still registers the lease it
			// granted), and they are not tried again; or the other
			// proxy's lease, tried once.
			if n := sender.Stats().Originated - before; n > uint64(len(ways)) {
				t.Errorf("seed %d cut %v: the send went out %d times on %d ways", seed, cut, n, len(ways))
			}
			bound := time.Duration(len(ways))*round + sender.refreshPatience()
			if took > bound {
				t.Errorf("seed %d cut %v: the send ended after %v, want within %v", seed, cut, took, bound)
			}
		}
	}
}
