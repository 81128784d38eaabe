package refnode

import (
	"bytes"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// peer is the reference's Peer: a node_id, its MACs, when it was last
// heard (by beacon or NIA only), its timeout and its queue.
type peer struct {
	id      [32]byte
	macs    []link.Addr
	lastRx  time.Time
	timeout int
	queue   []txDatagram
}

// canTx is the reference's test: heard (beacon or NIA) within 800 ms.
func (p *peer) canTx(now time.Time) bool { return now.Sub(p.lastRx) < CanTx }

func (b *Board) peerByID(id [32]byte) *peer {
	for _, p := range b.peers {
		if p.id == id {
			return p
		}
	}
	return nil
}

// peerByMAC is the reference's source lookup: the first peer (in the order
// added) that has the MAC.
func (b *Board) peerByMAC(mac link.Addr) *peer {
	for _, p := range b.peers {
		for _, m := range p.macs {
			if m.String() == mac.String() {
				return p
			}
		}
	}
	return nil
}

// Peers returns the node_ids the board knows, in the order it added them.
func (b *Board) Peers() [][32]byte {
	out := make([][32]byte, len(b.peers))
	for i, p := range b.peers {
		out[i] = p.id
	}
	return out
}

func (b *Board) addPeer(id [32]byte, mac link.Addr) {
	p := b.peerByID(id)
	if p == nil {
		p = &peer{id: id}
		b.peers = append(b.peers, p)
	}
	known := false
	for _, m := range p.macs {
		known = known || m.String() == mac.String()
	}
	if !known {
		p.macs = append(p.macs, mac)
	}
	p.lastRx = b.clk.Now()
	p.timeout = 4
}

// receive is Packager.receive for one datagram. Where the reference raises
// (and its loop swallows the exception), the datagram is simply dropped.
func (b *Board) receive(src link.Addr, data []byte) {
	b.skip()
	var p packet.Packet
	if err := p.UnmarshalBinary(data); err != nil || (p.Schema != 0 && p.Schema != 2) {
		// Its codec fails on checksum and routed schemas (PROTOCOL 11).
		b.stats.IgnoredPackets++
		return
	}
	p.Body = bytes.Clone(p.Body)
	from := b.peerByMAC(src)
	now := b.clk.Now()
	switch {
	case p.Schema == 2:
		// Reassembly, keyed by seq_id alone; any packet on the schema is a
		// chunk, an ack or a request as well as data.
		id := p.SeqID
		ev := "SS" + string(rune(id))
		if _, ok := b.sched[ev]; ok {
			// The reference cancels a scheduled request round here and
			// queues a new one; the cancel is applied after the new one is
			// scheduled, so it takes both: its rtx timer cancels itself
			// every other chunk.
			b.cancel(ev)
		}
		in := b.inSeqs[id]
		if in == nil {
			in = newInSeq(int(p.SeqSize)+1, packet.MustLookup(2).MaxBody)
			in.from, in.mac = from, src
			in.retry = 2
			b.inSeqs[id] = in
			if len(p.Body) == 0 {
				b.stats.StraySequences++
			}
		}
		in.retry = 3
		if in.add(int(p.PacketID), p.Body) {
			if len(in.data) < packet.PackageOverhead {
				b.stats.IgnoredPackets++
				return // Package.unpack raises: no ack, and the reassembly stays
			}
			b.deliver(in.data, src)
			delete(b.inSeqs, id)
		} else {
			b.queueEvent(ev, now.Add(SyncDelay), func() { b.syncSequence(id) })
		}
	case p.Flags.NIA() && from != nil:
		b.cancel(rnsEvent(from))
		from.lastRx = now
		return
	case p.Flags.RNS() && from != nil:
		nia := packet.Packet{Schema: 0, PacketID: uint16(b.packetID)}
		nia.Flags = nia.Flags.WithEncoded(packet.EncNIA)
		b.packetID++
		b.stats.NIASent++
		b.outbox = append(b.outbox, txDatagram{dst: src, data: mustEncode(&nia)})
		return
	default:
		if len(p.Body) < packet.PackageOverhead {
			b.stats.IgnoredPackets++
			return // Package.unpack raises: an ack, say
		}
		b.deliver(p.Body, src)
	}
	if p.Flags.Ask() {
		// The ack goes to the peer the packet came from: to a sender it
		// does not know, nothing.
		if from == nil {
			return
		}
		var a packet.Packet
		packet.AckFor(&p, &a)
		a.Body = nil
		b.stats.AcksSent++
		b.sendDatagram(from, src, mustEncode(&a))
	}
}

// deliver hands a Package to its application if its hash matches and the
// application is there (the reference's deliver returns False otherwise).
func (b *Board) deliver(pkgBytes []byte, src link.Addr) {
	var pkg packet.Package
	if err := pkg.UnmarshalBinary(pkgBytes); err != nil || pkg.Verify() != nil {
		b.stats.Undelivered++
		return
	}
	h := b.apps[pkg.AppID]
	if h == nil {
		b.stats.Undelivered++
		return
	}
	b.stats.Delivered++
	h(Message{App: pkg.AppID, Blob: bytes.Clone(pkg.Blob), From: src, Time: b.clk.Now()})
}

// sendDatagram is Packager._send_datagram: at once to a peer that can be
// sent to, else into its queue of ten (the oldest falls out) behind an RNS.
func (b *Board) sendDatagram(p *peer, dst link.Addr, data []byte) {
	b.skip()
	d := txDatagram{dst: dst, data: data}
	if p.canTx(b.clk.Now()) {
		b.outbox = append(b.outbox, d)
		b.kick()
		return
	}
	if len(p.queue) >= peerQueue {
		p.queue = p.queue[1:]
		b.stats.QueueDropped++
	}
	p.queue = append(p.queue, d)
	b.rns(p, RNSTries)
}

func rnsEvent(p *peer) string { return "rns" + string(p.id[:]) }

// rns is Packager.rns: an RNS now and another every 36 ms, up to four;
// then the peer's queue is dropped.
func (b *Board) rns(p *peer, retries int) {
	ev := rnsEvent(p)
	if b.pendingEvent(ev) || b.peerByID(p.id) != p {
		return
	}
	if retries < 1 {
		b.stats.QueueDropped += len(p.queue)
		p.queue = p.queue[:0]
		return
	}
	b.queueEvent(ev, b.clk.Now().Add(Intersect), func() { b.rns(p, retries-1) })
	r := packet.Packet{Schema: 0, PacketID: uint16(b.packetID)}
	r.Flags = r.Flags.WithEncoded(packet.EncRNS)
	b.packetID++
	b.stats.RNSSent++
	b.outbox = append(b.outbox, txDatagram{dst: p.macs[0], data: mustEncode(&r)})
	b.kick()
}

// syncSequence is Packager.sync_sequence: 30 s after a sequence's last
// chunk, a request for each missing one; four rounds, then it is dropped.
func (b *Board) syncSequence(id uint8) {
	in := b.inSeqs[id]
	if in == nil {
		return
	}
	if in.retry <= 0 {
		delete(b.inSeqs, id)
		return
	}
	for _, pid := range in.missing() {
		if in.from == nil || b.peerByID(in.from.id) != in.from {
			break // send_packet to a sender it does not know: nothing
		}
		r := packet.Packet{Schema: 2, PacketID: uint16(pid), SeqID: id, SeqSize: uint16(in.count - 1)}
		r.Flags = r.Flags.WithEncoded(packet.EncRtx)
		b.stats.RtxSent++
		b.sendDatagram(in.from, in.mac, mustEncode(&r))
	}
	in.retry--
	b.queueEvent("SS"+string(rune(id)), b.clk.Now().Add(SyncDelay), func() { b.syncSequence(id) })
}

// Send is Packager.send to a peer: schema 0 if the Package fits one packet,
// else schema 2, a sequence with the board's seq_id (which only broadcasts
// advance: all its unicast sequences are 0) and ask on the first, middle
// and last packets. It returns false if the peer is unknown or the Package
// too large; true means queued, nothing more (the reference learns nothing
// of what becomes of it).
func (b *Board) Send(to [32]byte, app packet.AppID, blob []byte) bool {
	p := b.peerByID(to)
	if p == nil {
		return false
	}
	pkg := packet.NewPackage(app, blob).AppendTo(nil)
	s0, s2 := packet.MustLookup(0), packet.MustLookup(2)
	switch {
	case len(pkg) <= s0.MaxBody:
		q := packet.Packet{Schema: 0, PacketID: uint16(b.packetID), Body: pkg}
		b.packetID++
		b.sendDatagram(p, p.macs[0], mustEncode(&q))
	case len(pkg) < s2.MaxSeq*s2.MaxBody:
		count := (len(pkg) + s2.MaxBody - 1) / s2.MaxBody
		for i := range count {
			end := min((i+1)*s2.MaxBody, len(pkg))
			q := packet.Packet{Schema: 2, PacketID: uint16(i), SeqID: b.seqID, SeqSize: uint16(count - 1), Body: pkg[i*s2.MaxBody : end]}
			if i == 0 || i == count-1 || i == count/2 {
				q.Flags = q.Flags.WithEncoded(packet.EncAsk)
			}
			b.sendDatagram(p, p.macs[0], mustEncode(&q))
		}
	default:
		return false
	}
	return true
}

// broadcastBeacon is Packager.broadcast of the board's beacon: schema 0,
// flags 0, the current packet_id (broadcasts do not advance it).
func (b *Board) broadcastBeacon() {
	b.skip()
	for _, m := range beacon.Messages(beacon.OpBeacon, b.cfg.NodeID, b.appOrder) {
		blob, _ := m.AppendTo(nil)
		q := packet.Packet{Schema: 0, PacketID: uint16(b.packetID), Body: packet.NewPackage(beacon.AppID, blob).AppendTo(nil)}
		b.castbox = append(b.castbox, mustEncode(&q))
	}
	b.kick()
}

// periodicBeacon is the Beacon application's burst: count beacons 36 ms
// apart, then peers' timeouts counted down, then the next burst in 60 s.
func (b *Board) periodicBeacon(count int) {
	if count <= 0 {
		for i := 0; i < len(b.peers); {
			p := b.peers[i]
			p.timeout--
			if p.timeout <= 0 {
				b.peers = append(b.peers[:i], b.peers[i+1:]...)
				continue
			}
			i++
		}
		b.queueEvent("beacon-s", b.clk.Now().Add(b.cfg.BeaconPeriod), func() { b.periodicBeacon(RNSTries) })
		return
	}
	b.broadcastBeacon()
	b.queueEvent("beacon", b.clk.Now().Add(Intersect), func() { b.periodicBeacon(count - 1) })
}

// receiveBeacon is the Beacon application: any message from another node
// adds (or refreshes) it as a peer, whatever its op; a beacon is answered.
func (b *Board) receiveBeacon(m Message) {
	var bm beacon.Message
	if err := bm.UnmarshalBinary(m.Blob); err != nil || bm.NodeID == b.cfg.NodeID {
		return
	}
	b.addPeer(bm.NodeID, m.From)
	if bm.Op == beacon.OpBeacon {
		for _, r := range beacon.Messages(beacon.OpResponse, b.cfg.NodeID, b.appOrder) {
			blob, _ := r.AppendTo(nil)
			b.Send(bm.NodeID, beacon.AppID, blob)
		}
	}
}

func mustEncode(p *packet.Packet) []byte {
	out, err := p.AppendTo(nil)
	if err != nil {
		panic(err) // every packet here is built within its schema's limits
	}
	return out
}
