# mnode: the board's node. One object owns every piece of state and is
# driven by poll(), which the main loop (agent.py) calls: frames in, timers,
# frames out. Nothing blocks. docs/protocol.md is the contract; the parts
# the board implements are listed in boards/README.md.
import mpkt
from mpkt import Packet, CodecError, ASK, ACK, RTX, RNS, NIA, F_ERROR, F_MODE

try:
    from time import ticks_ms, ticks_diff, ticks_add
except ImportError:  # CPython
    import time as _t

    def ticks_ms():
        return int(_t.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, b):
        return a + b

try:
    from random import getrandbits
except ImportError:  # a port built without the random module
    def getrandbits(_n):
        return 0

CAPS_APP = mpkt.app_id("Mycelium", "capabilities", 1)
SLEEP_APP = mpkt.app_id("Mycelium", "modem sleep", 1)
ROUTE_APP = mpkt.app_id("Mycelium", "route", 1)
TREE_APP = mpkt.app_id("Mycelium", "tree", 1)

# Error codes (docs/protocol.md 4, "Errors that travel back").
E_NO_ROUTE, E_UNKNOWN_APP, E_ASLEEP, E_ABANDONED = 1, 3, 4, 5
E_NO_MEMORY, E_BAD_HASH, E_TOO_LARGE, E_UNKNOWN_PEER = 7, 8, 10, 12
ERRORS = {1: "no_route", 2: "hop_limit", 3: "unknown_app", 4: "peer_asleep", 5: "abandoned",
          6: "checksum", 7: "no_memory", 8: "bad_hash", 9: "throttled", 10: "too_large",
          12: "unknown_peer", 13: "busy"}

ST_PROGRESS, ST_COMPLETE, ST_UNKNOWN, ST_EMPTY = 0, 1, 2, 3

BCAST = b"\xff" * 6


# A peer is forgotten after this many of our beacon periods with nothing
# heard from it (docs/protocol.md 5).
PEER_TIMEOUT = 4

# Beacon bursts (docs/protocol.md 5, as l2-seq/node/beacons.go): four
# beacons 36 ms apart on ESP-NOW, where airtime is cheap; one on LoRa at
# every setting (four go back to back there and only collide). The period
# wanders by up to +-10 % so two neighbours whose bursts collide once do
# not collide every period (LoRa has no carrier sense).
BURST_ESPNOW, BURST_LORA, BURST_SPACING_MS = 4, 1, 36


def _int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _posint(v):
    return _int(v) and v > 0


class Peer:
    def __init__(self, nid, mac):
        self.nid = nid
        self.mac = mac
        self.timeout = PEER_TIMEOUT
        self.rx = None  # ticks of the last frame heard
        self.full = False  # lists the capabilities app_id: speaks our protocol
        self.sleeps = False  # lists the modem sleep app_id
        self.rns = 0  # RNS sent in the current wake-up (0: none running)
        self.rns_at = 0
        self.answered = None  # ticks of our last beacon response to it


class Node:
    """cfg keys: node_id (32 bytes), beacon_ms, giveup_ms, rx_budget,
    sleep (bool), apps ({app_id: name}), lora (bool: the radio is a
    RYLR-998, so every packet uses the LoRa schemas 20-30), seed (int:
    the beacon jitter's; by default drawn from the port's RNG, which an
    ESP32 seeds from its hardware RNG)."""

    def __init__(self, radio, cfg, clock=ticks_ms):
        self.radio = radio
        self.clk = clock
        self.nid = cfg["node_id"]
        self.beacon_ms = cfg.get("beacon_ms", 60000)
        # Checked here, with one clear line: a period of 0 would send
        # beacons on every tick, and a seed that is not an integer would
        # fail deep in the jitter.
        if not _posint(self.beacon_ms):
            raise ValueError("beacon_ms %r: a positive number of milliseconds" % (self.beacon_ms,))
        self.giveup_ms = cfg.get("giveup_ms", 30000)
        # A radio that knows its airtime (the RYLR-998: a full frame takes
        # 0.1 s at SF7/500 kHz, 1.2 s at SF9/125 kHz, 2 s at CR 4/8 and a
        # 24-symbol preamble) gives up no sooner than 100 full frames'
        # airtimes, as a Go node does on the same link (l2-seq/node/tx.go):
        # before the first confirmation of a sequence go up to half its
        # packets (the asks of mpkt.asks) and the answer, so a fixed time
        # that ignores the link gives up while frames still get through
        # (8 s, the virtual rack's, abandoned 2 KiB at SF9/125 kHz, whose
        # nine frames take 11 s).
        air = getattr(radio, "airtime_ms", None)
        # Feedback timing in the link's airtimes (docs/protocol.md 4, the
        # Go node's first guess): an answer comes after two short frames
        # (48 bytes, a status) and a quarter of a full one, and 2 ms; a
        # receiver steps in after three of those and two full frames.
        # On ESP-NOW (no airtime) the fixed floors below rule: 300 ms,
        # probes up to 2 s apart, 500 ms gaps.
        self.air_mtu = 0
        self.fb_ms = 0
        if air is not None:
            self.air_mtu = air(radio.mtu)
            self.giveup_ms = max(self.giveup_ms, int(100 * self.air_mtu + 0.5))
            self.fb_ms = 2 * air(48) + self.air_mtu / 4 + 2
        self.probe_max = max(2000, int(4 * self.fb_ms + 1000))
        self.gap_ms = max(500, int(3 * self.fb_ms + 2 * self.air_mtu))
        self.budget = cfg.get("rx_budget", 16384)
        # The schema family: 0-10 on ESP-NOW, 20-30 on LoRa (PROTOCOL 3).
        self.fam = 20 if cfg.get("lora") else 0
        self.burst_len = BURST_LORA if cfg.get("lora") else BURST_ESPNOW
        # The jitter's generator (xorshift32): seeded once, from cfg or the
        # port's RNG mixed with our node_id, so that two boards differ even
        # on a port whose RNG starts the same every boot.
        seed = cfg.get("seed")
        if seed is not None and not (_int(seed) and seed >= 0):
            raise ValueError("seed %r: a non-negative integer" % (seed,))
        if seed is None:
            seed = getrandbits(30) ^ (self.nid[0] << 16 | self.nid[1] << 8 | self.nid[2])
        self.rnd = (seed & 0xFFFFFFFF) or 0x2545F491
        self.apps = {}  # app_id -> handler(from_nid_or_None, mac, blob)
        self.peers = {}  # node_id -> Peer
        self.bymac = {}  # mac -> Peer
        self.pid = 0
        self.sid = 0
        self.out = []  # sends in progress (Single, OutSeq)
        self.ins = {}  # (mac, sid) -> InSeq
        self.done = {}  # (mac, sid) -> (count, code, ticks): finished reassemblies
        self.seen = {}  # mac -> {pid: hash4}: singles delivered
        self.stats = {"tx": 0, "rx": 0, "tx_bytes": 0, "rx_bytes": 0, "delivered": 0,
                      "sent_ok": 0, "sent_failed": 0, "retx": 0, "drop_decode": 0,
                      "drop_checksum": 0, "drop_unknown_app": 0, "drop_stray": 0,
                      "drop_asleep": 0, "rns_sent": 0, "nia_sent": 0, "sleep_cycles": 0,
                      "beacon_bursts": 0, "rx_sequences": 0}
        self.unknown_app = None  # the last app_id refused (for the rig's reports)
        # sample(), if set, is called where a receiver's memory peaks (a
        # reassembly complete, the Package about to be handed over).
        self.sample = None
        self.leases = []  # (tree, tree_state, addr16) from our proxy
        self.proxy = None  # the proxy's mac
        self.lease_at = None
        now = self.clk()
        self.next_beacon = now
        self.burst = 0
        self.burst_at = now
        # Modem sleep (PROTOCOL 5.3): awake until wake_end, off until off_end.
        self.sleep = bool(cfg.get("sleep", False))
        self.radio_on = True
        self.wake_end = ticks_add(now, 40)
        self.off_end = now
        self.skips = 0
        self.register(mpkt.BEACON_APP, self._on_beacon)
        self.register(ROUTE_APP, self._on_route)
        # A leaf takes no part in the trees: their messages are taken (so
        # the senders do not resend them) and dropped.
        self.register(TREE_APP, self._on_tree)

    # ---- applications ----
    def register(self, app, handler):
        self.apps[app] = handler

    def beacon_apps(self):
        apps = [a for a in self.apps if a != TREE_APP]
        apps.remove(mpkt.BEACON_APP)
        apps = [mpkt.BEACON_APP, CAPS_APP] + apps
        if self.sleep:
            apps.append(SLEEP_APP)
        return apps

    # ---- transmit ----
    def fb_wait(self, least):
        """How long to wait for the answer to what we just handed the
        radio: least ms, or on a radio that knows its airtime, the frames
        queued for it (the one just handed over among them) and the
        answer: a LoRa module sends one frame at a time, seconds each."""
        if not self.air_mtu:
            return least
        pend = getattr(self.radio, "pending", None)
        return max(least, int((pend() if pend else 1) * self.air_mtu + self.fb_ms))

    def _next_pid(self):
        self.pid = (self.pid + 1) & 0xFF
        return self.pid

    def tx_busy(self):
        """A radio that queues packets (a LoRa module, seconds a frame)
        holds two already: a sequence's next packets wait with us, where
        a status can still take them back, and answers find room."""
        pend = getattr(self.radio, "pending", None)
        return pend is not None and pend() >= 2

    def _tx(self, mac, p):
        """Hands p to the radio; False when the radio refused it (its
        queue full)."""
        b = p.pack()
        # Our own data (not answers, not beacons) earns a skipped cycle:
        # its answer is coming.
        if mpkt.enc(p.flags) in (mpkt.ENC_NONE, mpkt.ENC_ASK) and p.body and p.body[:16] != mpkt.BEACON_APP:
            self._earn()
        if not self.radio_on:
            # A board wakes its radio to send (the reference does too).
            self.radio.on(True)
            self.radio_on = True
            self.wake_end = ticks_add(self.clk(), 40)
        if self.radio.send(mac, b) is False:
            return False
        self.stats["tx"] += 1
        self.stats["tx_bytes"] += len(b)
        return True

    def _ack(self, mac, p, err=0, body=b""):
        a = Packet(p.schema, mpkt.ack_flags(p.flags) & ~0x40 & 0xFF, p.pid, body, p.sid, p.ssz,
                   p.ttl, p.ts, p.frm, p.to)
        if err:
            a.flags |= F_ERROR
            a.body = bytes([err])
        mb = mpkt.max_body(a.schema)
        if len(a.body) > mb:
            a.body = a.body[:mb]
        self._tx(mac, a)

    def send(self, nid, app, blob, cb, routed=None):
        """Send blob to neighbour nid's application app; cb(code) when it
        ends: 0 confirmed, else an error code. routed: (tree_state, to,
        from, mode) to send through our proxy as a routed Package."""
        pkg = mpkt.package(app, blob)
        if routed is not None:
            mac = self.proxy
            peer = self.bymac.get(mac) if mac else None
            if peer is None:
                cb(E_NO_ROUTE)
                return
        else:
            peer = self.peers.get(nid)
            if peer is None:
                cb(E_UNKNOWN_PEER)
                return
        # PROTOCOL 4.1: the schema with the largest body that carries it.
        if routed is None:
            single, seq, seqw = self.fam, self.fam + 2, self.fam + 4
        else:
            single, seq, seqw = self.fam + 5, self.fam + 7, self.fam + 9
        if not peer.full:
            seqw = None  # a reference node has schemas 0 and 2 only
        if len(pkg) <= mpkt.max_body(single):
            self.out.append(Single(self, peer, Packet(single, ASK, self._next_pid(), pkg), cb, routed))
            return
        if len(pkg) < 256 * mpkt.max_body(seq):
            s = seq
        elif seqw is not None and len(pkg) < 65536 * mpkt.max_body(seqw):
            s = seqw
        else:
            cb(E_TOO_LARGE)
            return
        if len(pkg) > self.budget * 4:
            cb(E_TOO_LARGE)
            return
        self.sid = (self.sid + 1) & 0xFF
        self.out.append(OutSeq(self, peer, s, pkg, self.sid, cb, routed))

    # ---- receive ----
    def _rx(self, mac, b, now):
        self.stats["rx"] += 1
        self.stats["rx_bytes"] += len(b)
        try:
            p = mpkt.unpack(b)
        except CodecError:
            self.stats["drop_decode"] += 1
            return
        if not p.ck_ok():
            self.stats["drop_checksum"] += 1
            return
        # Modem sleep [ours]: an exchange with us (a flag, or a sequence)
        # keeps the radio on one more 40 ms window, which is what our
        # senders count on (docs/protocol.md 5); a cycle is skipped only for
        # sequence data, which keeps coming. Broadcasts without a flag
        # (beacons, tree claims) change nothing: on a busy channel they
        # would keep the node awake for good.
        if mpkt.schema(p.schema)[1] or p.flags & mpkt.ENC_MASK:
            self._window(now)
            if mpkt.schema(p.schema)[1] and mpkt.enc(p.flags) in (mpkt.ENC_NONE, mpkt.ENC_ASK) and p.body:
                self._earn()
        peer = self.bymac.get(mac)
        if peer is not None:
            # Any frame from a peer, not only its beacons, keeps it
            # (docs/protocol.md 5): on LoRa a Go node's one beacon a period
            # can collide with our burst several periods running (the two
            # periods differ by a few percent, so the phases drift slowly),
            # while its acks, grants and challenges get through; counting
            # only beacons, the board forgot a node it had heard 1.8 s
            # before, and a send to it ended unknown_peer.
            peer.rx = now
            peer.rns = 0
            peer.timeout = PEER_TIMEOUT
        e = mpkt.enc(p.flags)
        if e == mpkt.ENC_RNS:
            if peer is not None:
                self.stats["nia_sent"] += 1
                self._tx(mac, Packet(0 if p.schema < 20 else 20, NIA, self._next_pid()))
            return
        if e == mpkt.ENC_NIA:
            return
        if e == mpkt.ENC_ACK:
            for o in self.out:
                if o.mac() == mac and o.on_ack(p, now):
                    return
            self.stats["drop_stray"] += 1
            return
        sch = mpkt.schema(p.schema)
        if e == mpkt.ENC_RTX:
            for o in self.out:
                if isinstance(o, OutSeq) and o.mac() == mac and o.sid == p.sid:
                    o.requeue(p.pid)
            return
        if p.flags & F_ERROR:
            self.stats["drop_stray"] += 1
            return
        # A routed packet handed to us one hop is for one of our leases
        # (a leaf relays nothing); after a reboot we may not know the lease
        # yet, and take it all the same.
        if sch[1]:
            self._rx_seq(mac, peer, p, now)
            return
        try:
            app, h, blob = mpkt.unpackage(p.body)
        except CodecError:
            if e == mpkt.ENC_ASK:
                self._ack(mac, p, E_BAD_HASH)
            return
        # A single sent again (its ack was lost) is acked, not delivered twice.
        seen = self.seen.setdefault(mac, {})
        if seen.get(p.pid) == h[:4]:
            if e == mpkt.ENC_ASK:
                self._ack(mac, p)
            return
        code = self._deliver(mac, peer, app, blob, p)
        if code == 0 and e == mpkt.ENC_ASK:
            # Only a packet that asked is sent again; at most 32 per
            # sender are remembered (a retransmission comes within a
            # second; 256 would cost kilobytes per neighbour here).
            seen[p.pid] = h[:4]
            if len(seen) > 32:
                seen.pop(next(iter(seen)))
        if e == mpkt.ENC_ASK:
            self._ack(mac, p, code)

    def _deliver(self, mac, peer, app, blob, p):
        if app == mpkt.PATH_APP and mpkt.schema(p.schema)[2]:
            # A routed Package in a path header (docs/protocol.md 8): we are
            # its destination, so the carried Package is ours, and the
            # receipt names it (its hash is half_sha256 of its blob).
            try:
                app, _, blob = mpkt.unpath(blob)
            except CodecError:
                self.stats["drop_decode"] += 1
                return E_BAD_HASH
        h = self.apps.get(app)
        if h is None:
            self.stats["drop_unknown_app"] += 1
            self.unknown_app = app
            return E_UNKNOWN_APP
        self.stats["delivered"] += 1
        h(peer.nid if peer else None, mac, blob)
        if mpkt.schema(p.schema)[2] and app != ROUTE_APP:
            # A routed Package for our lease: the receipt goes back to its
            # origin through our proxy (docs/protocol.md 8).
            rc = Packet(self.fam + 5, (p.flags & F_MODE), self._next_pid(),
                        mpkt.package(ROUTE_APP, b"\x01" + mpkt.half_sha256(blob)),
                        ttl=32, ts=p.ts, to=p.frm, frm=p.to)
            # Back through the neighbour that handed it over: the proxy of
            # the lease it was sent to.
            self._tx(mac, rc)
        return 0

    def _rx_seq(self, mac, peer, p, now):
        key = (mac, p.sid)
        e = mpkt.enc(p.flags)
        ins = self.ins.get(key)
        if ins is not None and ins.count != p.ssz + 1:
            ins = None
            del self.ins[key]
        if ins is None:
            d = self.done.get(key)
            if d is not None and d[0] == p.ssz + 1:
                if e == mpkt.ENC_ASK:
                    self._final(mac, peer, p, d[1])
                return
            if not p.body:
                # A probe for a sequence we do not hold.
                if e == mpkt.ENC_ASK:
                    self._ack(mac, p, 0, bytes([ST_UNKNOWN]) if peer and peer.full else b"")
                return
            if p.ssz * mpkt.max_body(p.schema) >= self.budget:
                # Larger than we could ever hold: refused at once.
                self._ack(mac, p, E_NO_MEMORY)
                return
            ins = self.ins[key] = InSeq(p, now)
            self.stats["rx_sequences"] += 1
        if p.body and p.pid <= p.ssz and not ins.have[p.pid]:
            mb = mpkt.max_body(p.schema)
            if p.pid < p.ssz and len(p.body) != mb:
                self.stats["drop_stray"] += 1  # only the last chunk may be short
                return
            if ins.buf is None:
                # The whole sequence's room at its first chunk: chunks go in
                # place, and the Package is never copied (no join).
                if self._held() + ins.count * mb > self.budget:
                    self._ack(mac, p, E_NO_MEMORY)
                    return
                ins.buf = bytearray(ins.count * mb)
            ins.buf[p.pid * mb:p.pid * mb + len(p.body)] = p.body
            ins.have[p.pid] = 1
            ins.n += 1
            if p.pid == p.ssz:
                ins.size = p.ssz * mb + len(p.body)
            if p.pid > ins.hi:
                ins.hi = p.pid
        ins.rx = now
        ins.fruitless = 0
        if ins.n == ins.count:
            del self.ins[key]
            if self.sample:
                self.sample()  # the high point: the whole Package held
            try:
                app, h, blob = mpkt.unpackage(memoryview(ins.buf)[:ins.size])
                code = self._deliver(mac, peer, app, blob, p)
            except CodecError:
                code = E_BAD_HASH
            ins.buf = None
            self.done[key] = (ins.count, code, now)
            self._final(mac, peer, p, code)
            return
        if e == mpkt.ENC_ASK:
            self._ack(mac, p, 0, ins.status(mpkt.max_body(p.schema)) if peer and peer.full else b"")

    def _final(self, mac, peer, p, code):
        if code:
            self._ack(mac, p, code)
        elif peer is not None and peer.full:
            self._ack(mac, p, 0, bytes([ST_COMPLETE]))
        elif mpkt.enc(p.flags) == mpkt.ENC_ASK:
            self._ack(mac, p)

    def _held(self):
        n = 0
        for s in self.ins.values():
            if s.buf is not None:
                n += len(s.buf)
        return n

    # ---- beacons, peers, leases ----
    def _on_beacon(self, _nid, mac, blob):
        try:
            op, nid, apps = mpkt.beacon_parse(blob)
        except CodecError:
            return
        if nid == self.nid:
            return
        if op == mpkt.OP_DISCONNECT:
            p = self.peers.pop(nid, None)
            if p is not None:
                self.bymac.pop(p.mac, None)
            return
        p = self.peers.get(nid)
        new = p is None
        if new:
            p = self.peers[nid] = Peer(nid, mac)
        elif p.mac != mac:
            self.bymac.pop(p.mac, None)
            p.mac = mac
        self.bymac[mac] = p
        p.timeout = PEER_TIMEOUT
        p.rx = self.clk()
        if apps:
            p.full = p.full or CAPS_APP in apps
            p.sleeps = SLEEP_APP in apps
        # Answer a new peer at once, others once a period (not each of a
        # burst's four).
        if op == mpkt.OP_BEACON and (new or p.answered is None or ticks_diff(self.clk(), p.answered) > self.beacon_ms // 2):
            p.answered = self.clk()
            for m in mpkt.beacon_msgs(mpkt.OP_RESPONSE, self.nid, self.beacon_apps()):
                self._tx(mac, Packet(self.fam, 0, self._next_pid(), mpkt.package(mpkt.BEACON_APP, m)))
        if p.full and self.proxy is None and not self.leases:
            self._ask_lease(mac)

    def _ask_lease(self, mac):
        # A leaf asks a neighbour of ours for leased addresses (docs/protocol.md 8).
        self.lease_at = self.clk()
        self._tx(mac, Packet(self.fam, 0, self._next_pid(), mpkt.package(ROUTE_APP, b"\x30")))

    def _on_route(self, _nid, mac, blob):
        if not blob:
            return
        if blob[0] == 0x31:
            try:
                leases = mpkt.grant_parse(blob)
            except CodecError:
                self.stats["drop_decode"] += 1
                return
            if leases:
                self.leases = leases
                self.proxy = mac

    def _on_tree(self, _nid, _mac, _blob):
        self.stats["tree_ignored"] = self.stats.get("tree_ignored", 0) + 1

    def _beacon(self, now):
        if ticks_diff(now, self.next_beacon) < 0:
            return
        if self.burst == 0:
            self.burst_at = now
        for m in mpkt.beacon_msgs(mpkt.OP_BEACON, self.nid, self.beacon_apps()):
            self._tx(BCAST, Packet(self.fam, 0, self._next_pid(), mpkt.package(mpkt.BEACON_APP, m)))
        self.burst += 1
        if self.burst < self.burst_len:
            self.next_beacon = ticks_add(now, BURST_SPACING_MS)
            return
        self.burst = 0
        self.stats["beacon_bursts"] += 1
        # The next burst a jittered period after this one began.
        self.next_beacon = ticks_add(self.burst_at, self.beacon_period())
        for nid in list(self.peers):
            p = self.peers[nid]
            p.timeout -= 1
            if p.timeout <= 0:
                del self.peers[nid]
                self.bymac.pop(p.mac, None)
                if p.mac == self.proxy:
                    self.proxy = None
                    self.leases = []
        # Leases are renewed every few periods; ask again if we have none.
        if self.proxy is None:
            for p in self.peers.values():
                if p.full:
                    self._ask_lease(p.mac)
                    break
        elif self.lease_at is not None and ticks_diff(now, self.lease_at) > 4 * self.beacon_ms:
            self._ask_lease(self.proxy)

    def _rand(self):
        x = self.rnd
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.rnd = x
        return x

    def beacon_period(self):
        """A beacon period, ms: beacon_ms +-10 %, uniform."""
        p = self.beacon_ms
        return p - p // 10 + self._rand() % (p // 5 + 1)

    def goodbye(self):
        for m in mpkt.beacon_msgs(mpkt.OP_DISCONNECT, self.nid, []):
            self._tx(BCAST, Packet(self.fam, 0, self._next_pid(), mpkt.package(mpkt.BEACON_APP, m[:33])))

    # ---- waking a peer, sleeping ourselves ----
    def awake(self, peer, now):
        """True if data may go to peer now; else a wake-up (RNS) runs."""
        if not (peer.sleeps or not peer.full):
            return True
        if peer.rx is not None and ticks_diff(now, peer.rx) < 30:
            return True
        if peer.rns == 0 or ticks_diff(now, peer.rns_at) >= 36:
            peer.rns += 1
            peer.rns_at = now
            self.stats["rns_sent"] += 1
            self._tx(peer.mac, Packet(self.fam, RNS, self._next_pid()))
        return False

    def _window(self, now):
        if self.sleep and self.radio_on and ticks_diff(self.wake_end, now) < 40:
            self.wake_end = ticks_add(now, 40)

    def _earn(self):
        if self.sleep and self.skips < 10:
            self.skips += 1

    def set_sleep(self, on):
        if bool(on) != self.sleep:
            # Beacon now: peers learn at once whether to wake us.
            self.next_beacon = self.clk()
            self.burst = 0
        self.sleep = bool(on)
        if not on and not self.radio_on:
            self.radio.on(True)
            self.radio_on = True

    def _sleep(self, now):
        if not self.sleep:
            return
        if self.radio_on:
            if ticks_diff(now, self.wake_end) < 0:
                return
            if self.skips > 0:
                self.skips -= 1
                self.wake_end = ticks_add(now, 130)
                return
            self.radio.on(False)
            self.radio_on = False
            self.off_end = ticks_add(now, 90)
            self.stats["sleep_cycles"] += 1
        elif ticks_diff(now, self.off_end) >= 0:
            self.radio.on(True)
            self.radio_on = True
            self.wake_end = ticks_add(now, 40)

    # ---- the loop ----
    def poll(self):
        now = self.clk()
        for _ in range(32):
            f = self.radio.recv()
            if f is None:
                break
            self._rx(f[0], f[1], now)
        self._beacon(now)
        for o in self.out:
            o.poll(now)
        self.out = [o for o in self.out if not o.ended]
        for key in list(self.ins):
            s = self.ins[key]
            idle = ticks_diff(now, s.rx)
            if idle > 2 * self.giveup_ms:
                del self.ins[key]  # freed: the sender went silent
            elif idle > self.gap_ms * (1 << min(s.fruitless, 5)) and self._full(key[0]):
                s.fruitless += 1
                s.rx = now if s.fruitless < 6 else s.rx
                self._ack(key[0], s.tmpl, 0, s.status(mpkt.max_body(s.tmpl.schema)))
        for key in list(self.done):
            if ticks_diff(now, self.done[key][2]) > 10000:
                del self.done[key]
        self._sleep(now)

    def _full(self, mac):
        p = self.bymac.get(mac)
        return p is not None and p.full

    def peer_list(self):
        now = self.clk()
        return [{"node_id": p.nid.hex() if hasattr(p.nid, "hex") else p.nid, "mac": _mac(p.mac),
                 "full": p.full, "sleeps": p.sleeps, "timeout": p.timeout,
                 "last_heard_ms": None if p.rx is None else ticks_diff(now, p.rx)}
                for p in self.peers.values()]


def _mac(m):
    return ":".join("%02x" % x for x in m)


class Single:
    """One packet with ask, sent until acked (5 tries, doubling waits)."""

    def __init__(self, node, peer, p, cb, routed):
        self.n = node
        self.peer = peer
        self.p = p
        self.cb = cb
        self.tries = 0
        self.at = None
        self.wait = 150
        self.ended = False
        self.first = node.clk()
        if routed is not None:
            p.ts, p.to, p.frm = routed[0], routed[1], routed[2]
            p.flags |= routed[3] & F_MODE
            p.ttl = 32

    def mac(self):
        return self.peer.mac

    def end(self, code):
        self.ended = True
        self.n.stats["sent_ok" if code == 0 else "sent_failed"] += 1
        self.cb(code)

    def poll(self, now):
        if self.ended:
            return
        if self.at is not None and ticks_diff(now, self.at) < self.wait:
            return
        if self.tries >= 5:
            self.end(E_ABANDONED)
            return
        if not self.n.awake(self.peer, now):
            if self.peer.rns > 16:
                self.end(E_ASLEEP)
            return
        if self.tries:
            self.n.stats["retx"] += 1
            self.wait *= 2
        self.tries += 1
        self.at = now
        self.n._tx(self.peer.mac, self.p)
        self.wait = max(self.wait, self.n.fb_wait(150))

    def on_ack(self, a, now):
        if a.schema != self.p.schema or a.pid != self.p.pid:
            return False
        if self.ended:
            return True  # a second ack of one packet
        self.end(a.body[0] if (a.flags & F_ERROR and a.body) else 0)
        return True


class OutSeq:
    """A sequence being sent: streamed in order, then the receiver's status
    acks say what to send again (docs/protocol.md 4, ours)."""

    def __init__(self, node, peer, schema, pkg, sid, cb, routed):
        self.n = node
        self.peer = peer
        self.schema = schema
        self.pkg = pkg
        self.sid = sid
        self.cb = cb
        mb = mpkt.max_body(schema)
        self.count = (len(pkg) + mb - 1) // mb
        self.mb = mb
        self.queue = list(range(self.count))
        self.acked = bytearray(self.count)
        self.nacked = 0
        self.waiting = False
        self.at = 0
        self.wait = 300
        self.progress = node.clk()
        self.ended = False
        self.routed = routed

    def mac(self):
        return self.peer.mac

    def end(self, code):
        self.ended = True
        self.pkg = None
        self.n.stats["sent_ok" if code == 0 else "sent_failed"] += 1
        self.cb(code)

    def requeue(self, i):
        if 0 <= i < self.count and i not in self.queue:
            self.queue.append(i)

    def _packet(self, i, flags, body):
        p = Packet(self.schema, flags, i, body, self.sid, self.count - 1)
        if self.routed is not None:
            p.ts, p.to, p.frm = self.routed[0], self.routed[1], self.routed[2]
            p.flags |= self.routed[3] & F_MODE
            p.ttl = 32
        return p

    def poll(self, now):
        if self.ended:
            return
        if ticks_diff(now, self.progress) > self.n.giveup_ms:
            self.end(E_ABANDONED)
            return
        if self.waiting:
            if ticks_diff(now, self.at) < self.wait:
                return
            # No answer: probe (an empty ask on the last packet_id).
            if not self.n.awake(self.peer, now):
                return
            self.at = now
            self.n._tx(self.peer.mac, self._packet(self.count - 1, ASK, b""))
            self.wait = max(min(self.wait * 2, self.n.probe_max), self.n.fb_wait(300))
            return
        if not self.queue:
            return
        if not self.n.awake(self.peer, now):
            if self.peer.rns > 16:
                self.end(E_ASLEEP)
            return
        # Up to 8 packets a poll: the ESP-NOW send of a real board blocks
        # for each frame anyway.
        for _ in range(8):
            if not self.queue or self.n.tx_busy():
                break
            i = self.queue.pop(0)
            last = not self.queue
            asks = mpkt.asks(self.count)
            flags = ASK if (last or (i in asks and self.count >= 16)) else 0
            sent = self.n._tx(self.peer.mac, self._packet(i, flags, self.pkg[i * self.mb:(i + 1) * self.mb]))
            if sent is False and self.n.tx_busy():
                # The radio's queue is full (a LoRa module's 8 packets,
                # answers and beacons among them): this one waits for
                # room rather than going nowhere.
                self.queue.insert(0, i)
                break
            if last:
                self.waiting = True
                self.at = now
                self.wait = self.n.fb_wait(300)

    def on_ack(self, a, now):
        if a.schema != self.schema or a.sid != self.sid or a.ssz != self.count - 1:
            return False
        if self.ended:
            return True  # the final status again, or late answers
        if a.flags & F_ERROR:
            self.end(a.body[0] if a.body else E_ABANDONED)
            return True
        b = a.body
        if not b:
            # The wire's plain ack (a receiver that takes us for a reference
            # node): the last packet acked means it holds the whole sequence.
            if a.pid == self.count - 1:
                self.end(0)
            return True
        st = b[0]
        if st == ST_COMPLETE:
            self.end(0)
            return True
        self.waiting = False
        self.wait = 300
        if st in (ST_UNKNOWN, ST_EMPTY) or len(b) < 5:
            for i in range(self.count):
                if self.acked[i]:
                    self.acked[i] = 0
                    self.nacked -= 1
                self.requeue(i)
            return True
        hi = min((b[1] << 8) | b[2], self.count - 1)
        base = (b[3] << 8) | b[4]
        missing = []
        if base <= hi:
            missing.append(base)
        for i in range(min(base, hi + 1)):
            self._confirm(i, now)
        for j in range(8 * (len(b) - 5)):
            i = base + 1 + j
            if i > hi:
                break
            if b[5 + (j >> 3)] & (0x80 >> (j & 7)):
                missing.append(i)
            else:
                self._confirm(i, now)
        for i in missing:
            self.requeue(i)
        # What went out after the answered ask and above hi: again too.
        for i in range(hi + 1, self.count):
            if not self.acked[i]:
                self.requeue(i)
        return True

    def _confirm(self, i, now):
        if not self.acked[i]:
            self.acked[i] = 1
            self.nacked += 1
            self.progress = now


class InSeq:
    def __init__(self, p, now):
        self.count = p.ssz + 1
        self.buf = None  # count × max body, at the first chunk
        self.have = bytearray(self.count)
        self.n = 0
        self.size = 0
        self.hi = -1
        self.rx = now
        self.fruitless = 0
        # The header answers are built on (an ack with this packet's fields).
        self.tmpl = Packet(p.schema, ASK, p.ssz, b"", p.sid, p.ssz, p.ttl, p.ts, p.to, p.frm)

    def status(self, mb):
        if self.hi < 0:
            return bytes([ST_EMPTY])
        base = 0
        while base <= self.hi and self.have[base]:
            base += 1
        out = bytearray([ST_PROGRESS, self.hi >> 8, self.hi & 255, base >> 8, base & 255])
        j = 0
        while base + 1 + j <= self.hi and len(out) < mb:
            by = 0
            for k in range(8):
                i = base + 1 + j + k
                if i > self.hi:
                    break
                if not self.have[i]:
                    by |= 0x80 >> k
            out.append(by)
            j += 8
        return bytes(out)
