package rig

import (
	"context"
	"fmt"
	"time"
)

// Suite is the cross-device suite: each test drives boards through their
// agents and Linux nodes through their control APIs, and checks what
// arrived where (SHA-256 of the data, typed outcomes), never only that
// something was sent.
func Suite() []Test {
	return []Test{
		{Name: "beacons/boards-hear-nodes", Needs: need(1, 1, false), Run: boardsHearNodes},
		{Name: "beacons/nodes-hear-boards", Needs: need(1, 1, false), Run: nodesHearBoards},
		{Name: "beacons/boards-hear-boards", Needs: need(2, 0, false), Run: boardsHearBoards},
		{Name: "single/board-to-node", Needs: need(1, 1, false), Run: boardToNodeOn(64, espnowPair(0))},
		{Name: "sequence/board-to-node", Needs: need(1, 1, false), Run: boardToNodeOn(-1, espnowPair(0))},
		{Name: "single/node-to-board", Needs: need(2, 1, false), Run: nodeToBoardOn(64, espnowPair(1))},
		{Name: "sequence/node-to-board", Needs: need(2, 1, false), Run: nodeToBoardOn(-1, espnowPair(1))},
		{Name: "single/board-to-board", Needs: need(2, 0, false), Run: boardToBoard(64, 0, 1)},
		{Name: "sequence/board-to-board", Needs: need(2, 0, false), Run: boardToBoard(-1, 0, 1)},
		{Name: "routed/board-node-board", Needs: need(2, 1, false), Run: routedBoardToBoard},
		{Name: "sleep/board-to-board", Needs: need(3, 0, false), Run: sleepBoardToBoard},
		{Name: "sleep/node-to-board", Needs: need(3, 1, false), Run: sleepNodeToBoard},
		{Name: "reset/board-mid-transfer", Needs: need(2, 0, true), Run: resetMidTransfer},
		{Name: "rejoin/power-cycle", Needs: need(2, 1, true), Run: rejoin},
		{Name: "reset/node-sender", Needs: need(2, 1, true), Run: resetNodeSender},
		{Name: "lora/beacons", Needs: needLoRa, Run: loraBeacons},
		{Name: "lora/single/board-to-node", Needs: needLoRa, Run: boardToNodeOn(64, loraPair)},
		{Name: "lora/sequence/board-to-node", Needs: needLoRa, Run: boardToNodeOn(loraSequence, loraPair)},
		{Name: "lora/single/node-to-board", Needs: needLoRa, Run: nodeToBoardOn(64, loraPair)},
		{Name: "lora/sequence/node-to-board", Needs: needLoRa, Run: nodeToBoardOn(loraSequence, loraPair)},
	}
}

// loraSequence is the LoRa tests' sequence: 12 packets of the LoRa
// schemas, about a second of air at the virtual rack's SF7/500 kHz.
const loraSequence = 2048

// A pair picks the board and the node a test uses.
type pair func(e *Env) (*Board, *Node)

func espnowPair(bi int) pair {
	return func(e *Env) (*Board, *Node) { return e.Boards[bi], e.Nodes[0] }
}

func loraPair(e *Env) (*Board, *Node) { return e.LoRaBoards[0], e.LoRaNodes[0] }

func needLoRa(e *Env) string {
	if len(e.LoRaBoards) < 1 || len(e.LoRaNodes) < 1 {
		return fmt.Sprintf("needs a board and a Linux node on LoRa, the rack has %d and %d", len(e.LoRaBoards), len(e.LoRaNodes))
	}
	return ""
}

// loraBeacons: the LoRa node lists the LoRa board on its rylr998 link, and
// the board lists the node as a full peer.
func loraBeacons(ctx context.Context, e *Env) error {
	b, n := loraPair(e)
	err := poll(ctx, fmt.Sprintf("%s lists %s on rylr998", n.Name, b.Name), func(ctx context.Context) (bool, error) {
		ps, err := n.API.Peers(ctx)
		for _, p := range ps {
			if p.NodeID == b.NodeID && !p.Reference && p.Link == "rylr998" {
				return true, nil
			}
		}
		return false, err
	})
	if err != nil {
		return err
	}
	return poll(ctx, fmt.Sprintf("%s lists %s as a peer of ours", b.Name, n.Name), func(ctx context.Context) (bool, error) {
		ps, err := boardPeers(ctx, b)
		return err == nil && ps[n.NodeID] != nil && ps[n.NodeID]["full"] == true, err
	})
}

func need(boards, nodes int, power bool) func(e *Env) string {
	return func(e *Env) string {
		switch {
		case len(e.Boards) < boards:
			return fmt.Sprintf("needs %d boards, the rack has %d", boards, len(e.Boards))
		case len(e.Nodes) < nodes:
			return fmt.Sprintf("needs %d Linux nodes, the rack has %d", nodes, len(e.Nodes))
		case power && !e.Boards[1].Virtual():
			return "needs power control of a board (virtual boards; a switchable hub is not supported yet)"
		}
		return ""
	}
}

func size(e *Env, n int) int {
	if n < 0 {
		return e.Rack.Suite.TransferSize
	}
	return n
}

func boardsHearNodes(ctx context.Context, e *Env) error {
	for _, b := range e.Boards {
		for _, n := range e.Nodes {
			err := poll(ctx, fmt.Sprintf("%s lists %s as a peer of ours", b.Name, n.Name), func(ctx context.Context) (bool, error) {
				ps, err := boardPeers(ctx, b)
				return err == nil && ps[n.NodeID] != nil && ps[n.NodeID]["full"] == true, err
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func nodesHearBoards(ctx context.Context, e *Env) error {
	for _, n := range e.Nodes {
		for _, b := range e.Boards {
			err := poll(ctx, fmt.Sprintf("%s lists %s (not as a reference node)", n.Name, b.Name), func(ctx context.Context) (bool, error) {
				ps, err := n.API.Peers(ctx)
				for _, p := range ps {
					if p.NodeID == b.NodeID && !p.Reference && p.Link == "espnow" {
						return true, nil
					}
				}
				return false, err
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func boardsHearBoards(ctx context.Context, e *Env) error {
	for _, a := range e.Boards {
		for _, b := range e.Boards {
			if a == b {
				continue
			}
			err := poll(ctx, fmt.Sprintf("%s lists %s", a.Name, b.Name), func(ctx context.Context) (bool, error) {
				ps, err := boardPeers(ctx, a)
				return err == nil && ps[b.NodeID] != nil, err
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// boardToNodeOn: the pair's board sends to its node's listening
// application; the node gets the same bytes and the board's send ends
// confirmed.
func boardToNodeOn(n int, on pair) func(ctx context.Context, e *Env) error {
	return func(ctx context.Context, e *Env) error {
		b, nd := on(e)
		n := size(e, n)
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		got, err := nd.API.Listen(lctx, TestApp)
		if err != nil {
			return err
		}
		id, err := boardSend(ctx, b, nd.NodeID, n, nil)
		if err != nil {
			return err
		}
		ok, code, err := boardSent(ctx, b, id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s's send of %d bytes to %s failed: %s", b.Name, n, nd.Name, code)
		}
		want := sha(Blob(n))
		for {
			select {
			case r, open := <-got:
				if !open {
					return fmt.Errorf("%s's listener closed", nd.Name)
				}
				if r.SHA256 == want && r.Size == n && r.From == b.NodeID {
					return nil
				}
			case <-ctx.Done():
				return fmt.Errorf("%s confirmed, but %s's listener never got the %d bytes: %w", b.Name, nd.Name, n, ctx.Err())
			}
		}
	}
}

// nodeToBoardOn: the pair's node sends to its board through the mesh
// (name lookup, the board's leased address, its proxy); the board gets
// the bytes and the node's send is confirmed by the board's receipt.
func nodeToBoardOn(n int, on pair) func(ctx context.Context, e *Env) error {
	return func(ctx context.Context, e *Env) error {
		b, nd := on(e)
		n := size(e, n)
		blob := Blob(n)
		var last SendResult
		err := poll(ctx, fmt.Sprintf("%s sends %d bytes to %s", nd.Name, n, b.Name), func(ctx context.Context) (bool, error) {
			r, err := nd.API.Send(ctx, b.NodeID, TestApp, blob)
			if err != nil {
				return false, err
			}
			last = r
			if r.Code != "" || r.Err != "" {
				// The board's lease and record may still be settling.
				return false, fmt.Errorf("%s: %s", r.Code, r.Err)
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		if last.Bytes != n {
			return fmt.Errorf("confirmed %d bytes, sent %d", last.Bytes, n)
		}
		return boardGot(ctx, b, sha(blob))
	}
}

func boardToBoard(n, from, to int) func(ctx context.Context, e *Env) error {
	return func(ctx context.Context, e *Env) error {
		a, b := e.Boards[from], e.Boards[to]
		n := size(e, n)
		id, err := boardSend(ctx, a, b.NodeID, n, nil)
		if err != nil {
			return err
		}
		ok, code, err := boardSent(ctx, a, id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s's send of %d bytes to %s failed: %s", a.Name, n, b.Name, code)
		}
		return boardGot(ctx, b, sha(Blob(n)))
	}
}

// routedBoardToBoard: board 0 sends a routed Package to board 1's leased
// address through its proxy (a Go node), which routes it to board 1's
// proxy, which hands it on.
func routedBoardToBoard(ctx context.Context, e *Env) error {
	a, b := e.Boards[0], e.Boards[1]
	var ts int
	var addr string
	err := poll(ctx, "both boards hold leases", func(ctx context.Context) (bool, error) {
		ra, err := a.Agent.Do(ctx, map[string]any{"cmd": "leases"})
		if err != nil {
			return false, err
		}
		rb, err := b.Agent.Do(ctx, map[string]any{"cmd": "leases"})
		if err != nil {
			return false, err
		}
		la, _ := ra["leases"].([]any)
		lb, _ := rb["leases"].([]any)
		for _, x := range lb {
			mb := x.(map[string]any)
			for _, y := range la {
				ma := y.(map[string]any)
				if ma["tree_state"] == mb["tree_state"] && ma["tree"] == mb["tree"] {
					ts = int(mb["tree_state"].(float64))
					addr = mb["addr"].(string)
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	n := 100
	id, err := boardSend(ctx, a, b.NodeID, n, map[string]any{"routed": true, "tree_state": ts, "addr": addr})
	if err != nil {
		return err
	}
	ok, code, err := boardSent(ctx, a, id)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s's routed send to %s's lease %s failed at the first hop: %s", a.Name, b.Name, addr, code)
	}
	return boardGot(ctx, b, sha(Blob(n)))
}

func setSleep(ctx context.Context, b *Board, on bool) error {
	_, err := b.Agent.Do(ctx, map[string]any{"cmd": "sleep", "on": on})
	return err
}

// startSleep puts a board in modem sleep and waits until it has beaconed
// so (its beacons list the modem-sleep app_id) and its radio has cycled.
func startSleep(ctx context.Context, s *Board) error {
	b0, err := boardStat(ctx, s, "beacon_bursts")
	if err != nil {
		return err
	}
	c0, err := boardStat(ctx, s, "sleep_cycles")
	if err != nil {
		return err
	}
	if err := setSleep(ctx, s, true); err != nil {
		return err
	}
	return poll(ctx, s.Name+" sleeps and says so", func(ctx context.Context) (bool, error) {
		b, err := boardStat(ctx, s, "beacon_bursts")
		if err != nil {
			return false, err
		}
		c, err := boardStat(ctx, s, "sleep_cycles")
		if err == nil && !(b > b0 && c >= c0+3) {
			r, _ := s.Agent.Do(ctx, map[string]any{"cmd": "stats"})
			err = fmt.Errorf("%d beacon bursts and %d sleep cycles since %v", b-b0, c-c0, r)
		}
		return b > b0 && c >= c0+3, err
	})
}

// sleepBoardToBoard: board 2 modem-sleeps (its radio off 90 ms of every
// 130 ms); board 0 wakes it with RNS and the transfer goes through.
func sleepBoardToBoard(ctx context.Context, e *Env) error {
	a, s := e.Boards[0], e.Boards[2]
	defer setSleep(context.Background(), s, false)
	if err := startSleep(ctx, s); err != nil {
		return err
	}
	if err := poll(ctx, a.Name+" knows "+s.Name+" sleeps", func(ctx context.Context) (bool, error) {
		ps, err := boardPeers(ctx, a)
		return err == nil && ps[s.NodeID] != nil && ps[s.NodeID]["sleeps"] == true, err
	}); err != nil {
		return err
	}
	rns0, err := boardStat(ctx, a, "rns_sent")
	if err != nil {
		return err
	}
	nia0, err := boardStat(ctx, s, "nia_sent")
	if err != nil {
		return err
	}
	// As the node's (sleepNodeToBoard): a send that starts while the
	// sleeper is known awake (its beacon just heard) goes with no wake-up,
	// or one cut short, as it should; within a few one must wake it.
	woke, err := wokenWithin(ctx, e, s, boardToBoard(-1, 0, 2), func(ctx context.Context) (bool, error) {
		rns, err := boardStat(ctx, a, "rns_sent")
		if err != nil {
			return false, err
		}
		nia, err := boardStat(ctx, s, "nia_sent")
		return rns > rns0 && nia > nia0, err
	})
	if err != nil {
		return err
	}
	if !woke {
		return fmt.Errorf("%d sends delivered, but none with a wake-up %s answered", wakeSends, s.Name)
	}
	return nil
}

// wakeSends is how many sends to a sleeper the sleep tests make, at most,
// before one must have woken it.
const wakeSends = 4

// wokenWithin sends (send) up to wakeSends times, each after the sleeper s
// has slept since the last (a board that just answered is awake, and
// rightly needs no wake-up), until woke reports a wake-up that s answered.
// Every send must arrive.
func wokenWithin(ctx context.Context, e *Env, s *Board, send func(context.Context, *Env) error, woke func(context.Context) (bool, error)) (bool, error) {
	for i := range wakeSends {
		if i > 0 {
			c0, err := boardStat(ctx, s, "sleep_cycles")
			if err != nil {
				return false, err
			}
			if err := poll(ctx, s.Name+" sleeps again", func(ctx context.Context) (bool, error) {
				c, err := boardStat(ctx, s, "sleep_cycles")
				return err == nil && c > c0, err
			}); err != nil {
				return false, err
			}
		}
		if err := send(ctx, e); err != nil {
			return false, err
		}
		if ok, err := woke(ctx); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// sleepNodeToBoard: a Go node sends to a modem-sleeping board (it wakes it
// with RNS, seeing the modem-sleep app_id in the board's beacons).
func sleepNodeToBoard(ctx context.Context, e *Env) error {
	s := e.Boards[2]
	defer setSleep(context.Background(), s, false)
	if err := startSleep(ctx, s); err != nil {
		return err
	}
	nia0, err := boardStat(ctx, s, "nia_sent")
	if err != nil {
		return err
	}
	// The node wakes a board only when it has not heard it within the
	// board's on-window (node.needsWake): a board that just answered is
	// awake (each frame of a sequence banks it a skipped sleep), and a
	// send that starts right after the last one ended, or just after the
	// board's beacon burst, goes with no RNS, as it should (the rig is fast
	// enough for that: CI saw it).
	woke, err := wokenWithin(ctx, e, s, nodeToBoardOn(-1, espnowPair(2)), func(ctx context.Context) (bool, error) {
		nia, err := boardStat(ctx, s, "nia_sent")
		return nia != nia0, err
	})
	if err != nil || woke {
		return err
	}
	return fmt.Errorf("%d sends delivered, but %s answered no RNS: the node never woke it", wakeSends, s.Name)
}

// resetMidTransfer: board 1 loses power while board 0 sends it a large
// Package; board 0's send must end with an error, not hang or claim
// success. Board 1 is powered again at the end.
func resetMidTransfer(ctx context.Context, e *Env) error {
	a, b := e.Boards[0], e.Boards[1]
	defer powerOn(b)
	n := size(e, -1)
	// The power goes after 10 frames of the transfer have reached it.
	if err := b.CutAfter(10); err != nil {
		return err
	}
	id, err := boardSend(ctx, a, b.NodeID, n, nil)
	if err != nil {
		return err
	}
	t0 := time.Now()
	ok, code, err := boardSent(ctx, a, id)
	if err != nil {
		return err
	}
	if ok {
		return fmt.Errorf("%s reports its %d bytes confirmed by a board that lost power mid-transfer", a.Name, n)
	}
	if code != "abandoned" && code != "peer_asleep" {
		return fmt.Errorf("send failed with %q, want abandoned or peer_asleep", code)
	}
	if d := time.Since(t0); d > e.Rack.Suite.GiveUp.Duration+5*time.Second {
		return fmt.Errorf("the failure took %v, the give-up time is %v", d, e.Rack.Suite.GiveUp.Duration)
	}
	return nil
}

// rejoin: board 1 is power-cycled; it boots from its flash, is heard
// again by a node and a board, and takes a transfer.
func rejoin(ctx context.Context, e *Env) error {
	b, nd := e.Boards[1], e.Nodes[0]
	if err := b.PowerOff(); err != nil {
		return err
	}
	if err := b.PowerOn(ctx); err != nil {
		return err
	}
	if _, err := b.Agent.Do(ctx, map[string]any{"cmd": "listen", "app": TestApp}); err != nil {
		return err
	}
	err := poll(ctx, b.Name+" hears "+nd.Name+" again", func(ctx context.Context) (bool, error) {
		ps, err := boardPeers(ctx, b)
		return err == nil && ps[nd.NodeID] != nil && ps[e.Boards[0].NodeID] != nil, err
	})
	if err != nil {
		return err
	}
	return boardToBoard(-1, 0, 1)(ctx, e)
}

// resetNodeSender: a Go node sends a large Package to board 1, which loses
// power mid-transfer; the node's send must report the failure.
func resetNodeSender(ctx context.Context, e *Env) error {
	nd, b := e.Nodes[0], e.Boards[1]
	defer powerOn(b)
	// The node must know where the board is before the test starts.
	if err := nodeToBoardOn(64, espnowPair(1))(ctx, e); err != nil {
		return fmt.Errorf("before the reset: %w", err)
	}
	n := size(e, -1)
	if err := b.CutAfter(10); err != nil {
		return err
	}
	done := make(chan SendResult, 1)
	errc := make(chan error, 1)
	go func() {
		r, err := nd.API.Send(ctx, b.NodeID, TestApp, Blob(n))
		if err != nil {
			errc <- err
			return
		}
		done <- r
	}()
	select {
	case r := <-done:
		if r.Code == "" {
			return fmt.Errorf("%s reports %d bytes confirmed by a board that lost power mid-transfer", nd.Name, r.Bytes)
		}
		return nil
	case err := <-errc:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%s's send neither failed nor ended: %w", nd.Name, ctx.Err())
	}
}

// powerOn powers a board back on after a test that cut it (bounded), and
// has it listen to the test application again, as Setup left it: a board
// boots listening to nothing, and the next test may send to it (with only
// reset/ run, node-sender followed board-mid-transfer and met "no such
// application" for its whole minute).
func powerOn(b *Board) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if b.PowerOn(ctx) == nil {
		b.Agent.Do(ctx, map[string]any{"cmd": "listen", "app": TestApp})
	}
}
