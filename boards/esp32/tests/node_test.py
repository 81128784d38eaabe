# Two and three board nodes on an in-process radio with a virtual clock:
# beacons, singles, a 10 KiB sequence under loss, modem sleep with RNS/NIA,
# a receiver that vanishes mid-transfer, a LoRa radio's airtime and the
# give-up that follows it (a half-duplex channel of airtimes, SlowRadio).
# Runs under MicroPython (wasm) and CPython; run() returns (passed,
# failures).
import mnode
import mpkt
import rylr

BC = b"\xff" * 6


class Clock:
    def __init__(self):
        self.t = 1000

    def __call__(self):
        return self.t


class Air:
    def __init__(self, clk, loss_every=0):
        self.radios = []
        self.clk = clk
        self.loss_every = loss_every
        self.n = 0
        # drop(src_mac, dst_mac, frame) -> True loses that frame at dst.
        self.drop = None

    def radio(self, mac):
        r = Radio(self, mac)
        self.radios.append(r)
        return r


class Radio:
    def __init__(self, air, mac):
        self.air = air
        self.macb = mac
        self.q = []
        self.up = True
        self.errors = 0
        self.dead = False

    def mac(self):
        return self.macb

    def send(self, mac, b):
        if self.dead:
            return
        a = self.air
        for r in a.radios:
            if r is self or r.dead or not r.up or not (mac == BC or mac == r.macb):
                continue
            a.n += 1
            if a.loss_every and a.n % a.loss_every == 0:
                continue
            if a.drop and a.drop(self.macb, r.macb, b):
                continue
            r.q.append((self.macb, b))

    def recv(self):
        return self.q.pop(0) if self.q else None

    def on(self, on):
        self.up = on
        if not on:
            self.q = []


class SlowRadio(Radio):
    """A RYLR-998 on a LoRa channel: packets queue for the module (at most
    rylr.TXQ, as rylr.RYLR takes them) and go on the air one at a time,
    each arriving when its airtime (rylr.airtime_ms under params) is over,
    unless the receiver transmitted meanwhile (the module is half-duplex
    and does not listen before it talks). tick(now) moves the air."""

    def __init__(self, air, mac, params):
        Radio.__init__(self, air, mac)
        self.params = params
        self.mtu = rylr.MTU
        self.txq = []
        self.until = None
        self.start = None
        self.sent = []  # (start, end) of our transmissions
        self.lost = 0  # frames for us lost while we transmitted

    def airtime_ms(self, n):
        return rylr.airtime_ms(self.params, n + rylr.AIR_OVERHEAD)

    def pending(self):
        return len(self.txq)

    def send(self, mac, b):
        if len(self.txq) >= rylr.TXQ:
            return False
        self.txq.append((mac, b))
        return True

    def tick(self, now):
        if self.until is not None and now >= self.until:
            mac, b = self.txq.pop(0)
            start, end = self.start, self.until
            self.sent.append((start, end))
            for r in self.air.radios:
                if r is self or r.dead or not r.up or not (mac == BC or mac == r.macb):
                    continue
                if any(s < end and e > start for s, e in r.sent[-4:]) or (r.start is not None and r.start < end):
                    r.lost += 1
                    continue
                r.q.append((self.macb, b))
            self.until = None
        if self.until is None and self.txq:
            self.start = now
            self.until = now + self.airtime_ms(len(self.txq[0][1]))
        elif self.until is None:
            self.start = None


def lora_mesh(params, giveup_ms):
    """Two LoRa nodes on SlowRadios; beacons every 20 s (on a slow channel
    every 2 s would take a good part of the air)."""
    clk = Clock()
    air = Air(clk)
    nodes = []
    for i in range(2):
        r = SlowRadio(air, bytes([2, 0, 0, 0, 0, i + 1]), params)
        air.radios.append(r)
        nd = mnode.Node(r, {"node_id": bytes([i + 1]) * 32, "beacon_ms": 20000, "giveup_ms": giveup_ms,
                            "lora": True, "seed": i + 1}, clk)
        nd.got = []
        nd.register(APP, (lambda nd: lambda nid, mac, blob: nd.got.append((nid, bytes(blob))))(nd))
        nodes.append(nd)
    return clk, air, nodes


def run_air(clk, air, nodes, cond, ms, step=5):
    end = clk.t + ms
    while clk.t < end:
        for r in air.radios:
            r.tick(clk.t)
        for nd in nodes:
            nd.poll()
        if cond():
            return True
        clk.t += step
    return False


class FakeUART:
    """machine.UART to a module that answers each command as asked:
    queries with the value the link wants (so it writes none), the rest
    with +OK, when answer() is called."""

    def __init__(self):
        self.lines = []
        self.rx = b""
        self.answered = 0

    def any(self):
        return len(self.rx)

    def read(self, n):
        d, self.rx = self.rx[:n], self.rx[n:]
        return d

    def write(self, b):
        self.lines.append(bytes(b).rstrip(b"\r\n"))

    def answer(self):
        if self.answered == len(self.lines):
            return
        self.answered = len(self.lines)
        last = self.lines[-1]
        if last.endswith(b"?"):
            name = last[3:-1]
            want = {b"ADDRESS": b"1", b"NETWORKID": b"18", b"PARAMETER": b"9,7,1,12"}[name]
            self.rx += b"+" + name + b"=" + want + b"\r\n"
        else:
            self.rx += b"+OK\r\n"


APP = mpkt.app_id("hil", "", 1)


def mesh(n, loss_every=0, sleep=(), lora=False):
    clk = Clock()
    air = Air(clk, loss_every)
    nodes = []
    for i in range(n):
        r = air.radio(bytes([2, 0, 0, 0, 0, i + 1]))
        nd = mnode.Node(r, {"node_id": bytes([i + 1]) * 32, "beacon_ms": 2000, "giveup_ms": 5000,
                            "sleep": i in sleep, "lora": lora, "seed": i + 1}, clk)
        nd.got = []
        nd.register(APP, (lambda nd: lambda nid, mac, blob: nd.got.append((nid, bytes(blob))))(nd))
        nodes.append(nd)
    return clk, air, nodes


def is_beacon(b):
    try:
        p = mpkt.unpack(b)
    except mpkt.CodecError:
        return False
    return p.body[:16] == mpkt.BEACON_APP


def beacon_bursts(lora, periods=12):
    """Runs one node alone for about `periods` beacon periods and returns
    its bursts: [(start ms, [ms of each beacon frame])]."""
    clk, air, (a,) = mesh(1, lora=lora)
    sent = []
    send = a.radio.send
    a.radio.send = lambda mac, b: (mac == BC and is_beacon(b) and sent.append(clk.t), send(mac, b))
    run_until(clk, [a], lambda: False, periods * 2000)
    bursts = []
    for t in sent:
        if bursts and t - bursts[-1][0] < 1000:
            bursts[-1][1].append(t)
        else:
            bursts.append((t, [t]))
    return bursts


def run_until(clk, nodes, cond, ms):
    end = clk.t + ms
    while clk.t < end:
        for nd in nodes:
            nd.poll()
        if cond():
            return True
        clk.t += 2
    return False


def run():
    ok = [0]
    bad = []

    def check(c, what):
        if c:
            ok[0] += 1
        else:
            bad.append(what)

    # Beacons: each learns the other, as one of ours (capabilities).
    clk, air, (a, b) = mesh(2)
    check(run_until(clk, [a, b], lambda: b.nid in a.peers and a.nid in b.peers, 500), "beacons: peers both ways")
    check(a.peers[b.nid].full, "beacons: capabilities app_id seen")

    # Bursts (docs/protocol.md 5): four beacons 36 ms apart on ESP-NOW,
    # one on LoRa; the period wanders within +-10 % (2000 ms here, the
    # loop's 2 ms steps allowed), and not the same every time: two
    # neighbours that collide once must not collide every period.
    for lora, k in ((False, 4), (True, 1)):
        name = "lora" if lora else "espnow"
        bursts = beacon_bursts(lora)
        sizes = [len(b[1]) for b in bursts]
        check(len(bursts) >= 10 and all(n == k for n in sizes), "beacons %s: bursts of %d %r" % (name, k, sizes))
        gaps = [b[1][i + 1] - b[1][i] for b in bursts for i in range(len(b[1]) - 1)]
        check(all(34 <= g <= 40 for g in gaps), "beacons %s: 36 ms apart %r" % (name, gaps))
        periods = [bursts[i + 1][0] - bursts[i][0] for i in range(len(bursts) - 1)]
        check(all(1800 <= p <= 2202 for p in periods), "beacons %s: periods within 2000 ms +-10 %% %r" % (name, periods))
        check(len(set(periods)) >= len(periods) // 2, "beacons %s: periods jittered %r" % (name, periods))
    # Seeded: the same seed, the same periods; the port's RNG otherwise.
    x, y, z = (mnode.Node(None, {"node_id": b"\x01" * 32, "seed": sd}) for sd in (7, 7, 8))
    px = [x.beacon_period() for _ in range(8)]
    check(px == [y.beacon_period() for _ in range(8)] and px != [z.beacon_period() for _ in range(8)], "beacons: jitter seeded")
    # Bad configuration: one clear error, not a node that beacons every tick.
    for wrong in ({"beacon_ms": 0}, {"beacon_ms": "60000"}, {"seed": "x"}, {"seed": -1}):
        cfg = {"node_id": b"\x01" * 32}
        cfg.update(wrong)
        try:
            mnode.Node(None, cfg)
            err = None
        except ValueError as e:
            err = str(e)
        check(err is not None and list(wrong)[0] in err, "config: %r refused (%r)" % (wrong, err))

    # A single, confirmed.
    res = []
    a.send(b.nid, APP, b"hello", res.append)
    check(run_until(clk, [a, b], lambda: res, 2000) and res == [0] and b.got[-1][1] == b"hello", "single: confirmed and delivered")

    # To an application nobody has: the typed error comes back.
    res = []
    a.send(b.nid, mpkt.app_id("nobody", "", 1), b"x", res.append)
    check(run_until(clk, [a, b], lambda: res, 2000) and res == [mnode.E_UNKNOWN_APP], "single: unknown_app reported")

    # 10 KiB with one frame in seven lost: delivered whole, confirmed.
    clk, air, (a, b) = mesh(2, loss_every=7)
    run_until(clk, [a, b], lambda: b.nid in a.peers and a.nid in b.peers, 2000)
    blob = bytes([(i * 7 + 3) & 255 for i in range(10240)])
    res = []
    a.send(b.nid, APP, blob, res.append)
    check(run_until(clk, [a, b], lambda: res, 20000) and res == [0], "sequence 10 KiB under loss: confirmed %r" % res)
    check(b.got and b.got[-1][1] == blob, "sequence 10 KiB under loss: delivered intact")
    check(a.stats["retx"] >= 0 and b.stats["delivered"] >= 1, "sequence: counters")

    # A peer whose beacons are all lost, but whose other frames come, is
    # kept: any frame resets its timeout (docs/protocol.md 5). On the
    # virtual rack's LoRa channel a Go node's one beacon a period collided
    # with the board's burst for several periods running while its other
    # frames got through, and the board forgot it: a send to it a moment
    # later ended unknown_peer (lora/sequence/board-to-node).
    clk, air, (a, b) = mesh(2)
    run_until(clk, [a, b], lambda: b.nid in a.peers and a.nid in b.peers, 2000)
    air.drop = lambda src, dst, f: src == b.radio.macb and dst == a.radio.macb and is_beacon(f)
    lost = []
    for i in range(6):  # 12 s: six of a's 2 s periods, its timeout is four
        res = []
        b.send(a.nid, APP, b"still here" + bytes([i]), res.append)
        run_until(clk, [a, b], lambda: False, 2000)
        if res != [0] or b.nid not in a.peers:
            lost.append((i, res, b.nid in a.peers))
    check(not lost, "peers: one whose beacons are lost but whose singles come is kept %r" % lost)
    # ... and one that goes silent is still forgotten within the timeout.
    air.drop = lambda src, dst, f: src == b.radio.macb
    gone = run_until(clk, [a, b], lambda: b.nid not in a.peers, (mnode.PEER_TIMEOUT + 1) * 2000)
    check(gone, "peers: a silent peer is forgotten after %d periods" % mnode.PEER_TIMEOUT)
    res = []
    a.send(b.nid, APP, b"x", res.append)
    check(res == [mnode.E_UNKNOWN_PEER], "peers: a send to a forgotten peer ends unknown_peer %r" % res)

    # Modem sleep: the receiver sleeps; the sender wakes it with RNS, then
    # the transfer goes through.
    clk, air, (a, b) = mesh(2, sleep=(1,))
    run_until(clk, [a, b], lambda: b.nid in a.peers and a.nid in b.peers, 3000)
    run_until(clk, [a, b], lambda: False, 3000)  # let it fall asleep
    check(b.stats["sleep_cycles"] > 0, "sleep: the radio cycles")
    res = []
    a.send(b.nid, APP, blob[:3000], res.append)
    check(run_until(clk, [a, b], lambda: res, 10000) and res == [0], "sleep: transfer through modem sleep %r" % res)
    check(a.stats["rns_sent"] > 0 and b.stats["nia_sent"] > 0, "sleep: RNS answered by NIA")

    # The receiver dies mid-transfer: the sender reports it, no silent loss.
    clk, air, (a, b) = mesh(2)
    run_until(clk, [a, b], lambda: b.nid in a.peers, 2000)
    res = []
    a.send(b.nid, APP, blob, res.append)
    run_until(clk, [a, b], lambda: b.ins, 2000)
    air.radios[1].dead = True
    check(run_until(clk, [a, b], lambda: res, 20000) and res and res[0] != 0, "reset mid-transfer: sender reports failure %r" % res)

    # A LoRa radio's airtime (rylr.airtime_ms): l1-link/lora.Params.Airtime
    # of a full frame (240 bytes + the module's 8) at the rack's SF7/500 kHz,
    # the firmware's default SF9/125 kHz, and the slowest SF9/125 kHz the
    # module takes (CR 4/8, a 24-symbol preamble).
    for params, want in (("7,9,1,12", 98.368), ("9,7,1,12", 1246.208), ("9,7,4,24", 1983.488)):
        got = rylr.airtime_ms(params, rylr.MTU + rylr.AIR_OVERHEAD)
        check(abs(got - want) < 0.001, "lora: airtime of a full frame at %s: %r ms, want %r" % (params, got, want))
    # The give-up follows the link: at least 100 full frames' airtimes on a
    # radio that knows them; the configured time on one that does not.
    air = Air(Clock())
    for params, giveup, want in (("7,9,1,12", 8000, 9837), ("9,7,1,12", 30000, 124621), ("7,9,1,12", 60000, 60000)):
        nd = mnode.Node(SlowRadio(air, b"\x00\x01", params), {"node_id": b"\x01" * 32, "giveup_ms": giveup, "lora": True})
        check(nd.giveup_ms == want, "lora: give-up at %s, %d ms configured: %r, want %d" % (params, giveup, nd.giveup_ms, want))
    check(mnode.Node(air.radio(b"\x02" * 6), {"node_id": b"\x01" * 32, "giveup_ms": 8000}).giveup_ms == 8000,
          "espnow: the give-up is as configured")

    # 2 KiB (nine packets, the last asking) at the firmware's default
    # SF9/125 kHz, the virtual rack's 8 s give-up configured: the nine
    # frames alone take 11 s of air before the first answer can confirm
    # anything. The sender must not give up while they get through (with
    # the fixed 8 s it ended abandoned, its frames still going out).
    clk, air, (a, b) = lora_mesh("9,7,1,12", 8000)
    run_air(clk, air, [a, b], lambda: b.nid in a.peers and a.nid in b.peers, 60000)
    res = []
    a.send(b.nid, APP, blob[:2048], res.append)
    check(run_air(clk, air, [a, b], lambda: res, 300000) and res == [0],
          "lora: 2 KiB at SF9/125 kHz confirmed %r (give-up %d ms)" % (res, a.giveup_ms))
    check(b.got and b.got[-1][1] == blob[:2048], "lora: 2 KiB delivered intact")

    # The feedback timers follow the airtime too: a probe waits for what
    # the module still has to send and the answer, a receiver's unasked
    # status for three answers and two full frames, and a sequence keeps
    # at most two packets in the module's queue. With ESP-NOW's 300 ms
    # and 500 ms the two ends talked over each other's frames (the module
    # is half-duplex): 2 KiB at SF9/125 kHz took 90 s, 167 frames lost.
    clk, air, (a, b) = lora_mesh("9,7,1,12", 30000)
    run_air(clk, air, [a, b], lambda: b.nid in a.peers and a.nid in b.peers, 60000)
    res = []
    t0 = clk.t
    a.send(b.nid, APP, blob[:2048], res.append)
    least = 9 * rylr.airtime_ms("9,7,1,12", rylr.MTU + rylr.AIR_OVERHEAD)
    done = run_air(clk, air, [a, b], lambda: res, 300000) and res == [0]
    check(done and clk.t - t0 < 2 * least,
          "lora: 2 KiB at SF9/125 kHz in %d ms %r, want under twice its nine frames' %d ms" % (clk.t - t0, res, least))
    # The slowest the module takes (SF9/125 kHz, CR 4/8, a 24-symbol
    # preamble, 2 s a frame): 10 KiB confirmed, the default give-up.
    clk, air, (a, b) = lora_mesh("9,7,4,24", 30000)
    run_air(clk, air, [a, b], lambda: b.nid in a.peers and a.nid in b.peers, 60000)
    res = []
    a.send(b.nid, APP, blob, res.append)
    check(run_air(clk, air, [a, b], lambda: res, 900000) and res == [0],
          "lora: 10 KiB at SF9/125 kHz CR 4/8 confirmed %r" % res)
    check(b.got and b.got[-1][1] == blob, "lora: 10 KiB at CR 4/8 delivered intact")

    # Modulation the module does not take: one clear error at boot (the
    # airtime and give-up follow it), not a module answering +ERR.
    for wrong, net in (("9,7,1", 18), ("x,7,1,12", 18), ("9,6,1,12", 18), ("10,7,1,12", 18),
                       ("12,9,1,12", 18), ("9,7,5,12", 18), ("9,7,1,25", 18), ("9,7,1,24", 5)):
        try:
            rylr.RYLR(FakeUART(), 1, network=net, params=wrong, clock=Clock())
            err = None
        except ValueError as e:
            err = str(e)
        check(err is not None and "lora params" in err, "rylr: params %r on network %d refused (%r)" % (wrong, net, err))
    check(rylr.parse_params("11,9,4,24") == (11, 9, 4, 24), "rylr: SF11 at 500 kHz, CR 4/8, preamble 24 taken")

    # The RYLR-998 link: after the module's +OK to an AT+SEND, the next
    # command waits for the frame's airtime (the module answers +ERR=17
    # until the frame is out; the link used to ask again every 20 ms).
    clk = Clock()
    uart = FakeUART()
    link = rylr.RYLR(uart, 1, params="9,7,1,12", clock=clk)
    for _ in range(20):  # the start-up commands, each answered as asked
        link.poll()
        uart.answer()
    check(link.ready, "rylr: ready after start-up %r" % uart.lines)
    pkt = b"\x00" + bytes(range(1, 100))
    link.send(b"\x00\x02", pkt)
    link.send(b"\x00\x02", pkt)
    link.poll()
    check(uart.lines[-1][:8] == b"AT+SEND=", "rylr: the first packet sent %r" % uart.lines[-1:])
    sent = len(uart.lines)
    uart.answer()
    air = link.airtime_ms(len(pkt))
    asked = []
    while clk.t < 1000 + air + 10:
        link.poll()
        if len(uart.lines) > sent:
            asked.append(clk.t - 1000)
            break
        clk.t += 5
    check(asked and air <= asked[0] <= air + 10,
          "rylr: the next AT+SEND %r ms after +OK, want after the frame's %d ms of air" % (asked, air))

    # Truncated and garbage frames are counted, never a crash.
    clk, air, (a, b) = mesh(2)
    for junk in (b"", b"\x00", b"\x00\x00\x63\x00\x01", b"\x00\x00\x02\x08\x00\x00\xff", bytes(300)):
        b.radio.q.append((a.radio.macb, junk))
    b.poll()
    check(b.stats["drop_decode"] >= 4, "garbage: counted drops %r" % b.stats["drop_decode"])

    # Lease grants carry compact addresses (l3-route/route/lease.go).
    g = mpkt.grant_parse(b"\x31\x02\x00\x10\x02\x12\x01\x01\x11\x01\x30")
    check(g == [(0, 16, b"\x12\x01" + bytes(14)), (1, 17, b"\x30" + bytes(15))], "grant: two compact leases %r" % g)
    deep = b"\x31\x01\x00\x10\x14" + b"\x11" * 20
    check(mpkt.grant_parse(deep) == [], "grant: a lease deeper than the wire is left out")
    for junk in (b"\x31", b"\x31\x01\x00\x10\x02\x12", b"\x31\x01\x00\x10\x02\x12\x00",
                 b"\x31\x01\x00\x10\x41" + b"\x11" * 65, b"\x31\x01\x01\x10\x01\x12",
                 b"\x31\x01\x00\x10\x01\x12\x00", b"\x31\x11"):
        try:
            mpkt.grant_parse(junk)
            check(False, "grant: %r refused" % junk)
        except mpkt.CodecError:
            check(True, "")
    # A path header's carried Package (l3-route/route/path.go).
    inner = mpkt.package(mnode.CAPS_APP, b"carried")
    ph = b"\x01\x00" + b"\xff" * 8 + b"\x01\x10\x02\x12\x01" + b"\x01\x10\x01\x30"
    app, h, blob = mpkt.unpath(ph + inner)
    check(app == mnode.CAPS_APP and blob == b"carried" and h == mpkt.half_sha256(b"carried"), "path: the carried Package")
    for junk in (ph[:12], ph, b"\x02" + ph[1:] + inner, ph[:10] + b"\x00" + inner, b"\x00\x02" + ph[2:] + inner):
        try:
            mpkt.unpath(junk)
            check(False, "path: %r refused" % junk)
        except mpkt.CodecError:
            check(True, "")
    return ok[0], bad


if __name__ == "__main__":
    p, b = run()
    for x in b:
        print("FAIL", x)
    print("node: %d passed, %d failed" % (p, len(b)))
