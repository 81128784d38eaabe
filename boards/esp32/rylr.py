# rylr: the RYLR-998 LoRa link over a UART (docs/lora-rylr998.md): one
# packet per AT+SEND, in the LF-free framing of docs/protocol.md section 9
# (the Go side is l1-link/rylr998/frame.go), +RCV lines parsed into packets.
# Nothing blocks: poll() moves bytes both ways, one command in flight at a
# time, so it runs from the board's main loop (and under the virtual
# board's host, which only delivers UART bytes between steps). It offers
# the node the radio's interface: send(addr, bytes), recv(), on(bool),
# mac(); an address is 2 bytes big-endian, b"\x00\x00" broadcast. A slow
# radio also says how long a packet takes on the air (airtime_ms(n), mtu):
# the node's give-up follows it.
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

MTU = 240
BCAST6 = b"\xff" * 6
CMD_MS = 1000  # an unanswered command is given up after this (the Go driver's default)
BUSY_MS = 20  # +ERR=17: the radio still sends; try again after this
BUSY_TRIES = 100
TXQ = 8  # packets waiting for the module (the ESP-NOW driver's queue is as small)
RXQ = 16
LINE_MAX = 300  # "+RCV=65535,240," + 240 bytes + ",-164,-20" fits
# The module adds 8 bytes to every payload on the air (its guide; the Go
# driver's rylr998.AirOverhead).
AIR_OVERHEAD = 8
# LoRa bandwidths in Hz by AT+PARAMETER code (l1-link/lora.Bandwidths);
# the module takes 7, 8 and 9 (125, 250 and 500 kHz).
BANDWIDTHS = (7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000)


class FrameError(ValueError):
    pass


def frame(pkt):
    """The LF-free frame of a packet (protocol.md 9): the version byte (0)
    dropped, the rest cut at every 0x0A, each run behind a byte 11+len."""
    n = len(pkt)
    if n == 0 or pkt[0] != 0:
        raise FrameError("version")
    if n > MTU:
        raise FrameError("too long")
    out = bytearray()
    start = 1
    while True:
        i = pkt.find(b"\n", start)
        end = n if i < 0 else i
        out.append(11 + end - start)
        out.extend(pkt[start:end])
        if i < 0:
            return bytes(out)
        start = i + 1


def unframe(f):
    """The packet a frame encodes; FrameError for anything else."""
    n = len(f)
    if n == 0 or n > MTU or b"\n" in f:
        raise FrameError("not a frame")
    out = bytearray(b"\x00")
    i = 0
    while i < n:
        c = f[i]
        if c < 11 or i + 1 + c - 11 > n:
            raise FrameError("bad run")
        if i:
            out.append(10)
        out.extend(f[i + 1:i + 1 + c - 11])
        i += 1 + c - 11
    return bytes(out)


def parse_params(params, network=18):
    """The AT+PARAMETER arguments "SF,BW,CR,preamble" as four ints, checked
    against what the module takes (as the Go driver's ParamsCode): BW code
    7, 8 or 9 (125, 250, 500 kHz), SF5 up to SF9, SF10, SF11 there, CR
    1..4, a preamble of 4..24 on network 18 and 12 on any other.
    ValueError naming the setting otherwise."""
    try:
        sf, bw, cr, pre = (_int(x.strip().encode()) for x in str(params).split(","))
    except ValueError:
        raise ValueError("lora params %r: four integers SF,BW,CR,preamble" % (params,))
    if bw not in (7, 8, 9):
        raise ValueError("lora params %r: bandwidth code %d, the module takes 7, 8 or 9" % (params, bw))
    if not 5 <= sf <= bw + 2:
        raise ValueError("lora params %r: SF%d, the module takes SF5..SF%d at code %d" % (params, sf, bw + 2, bw))
    if not 1 <= cr <= 4:
        raise ValueError("lora params %r: coding rate %d not in 1..4" % (params, cr))
    if (network == 18 and not 4 <= pre <= 24) or (network != 18 and pre != 12):
        raise ValueError("lora params %r: preamble %d (4..24 on network 18, 12 on others)" % (params, pre))
    return sf, bw, cr, pre


def airtime_ms(params, n):
    """Time on air in ms of a LoRa payload of n bytes under AT+PARAMETER
    params "SF,BW,CR,preamble": Semtech AN1200.13 with an explicit header
    and a CRC, low data rate optimisation when a symbol lasts 16 ms or more
    (the module's choice), as l1-link/lora.Params.Airtime computes it."""
    sf, bw, cr, pre = parse_params(params)
    sym = (1 << sf) * 1000 / BANDWIDTHS[bw]
    de = 1 if sym >= 16 else 0
    num = 8 * n - 4 * sf + 28 + 16
    den = 4 * (sf - 2 * de)
    k = (num + den - 1) // den if num > 0 else 0
    return (pre + 4.25 + 8 + k * (cr + 4)) * sym


def _int(b):
    # int() of ASCII digits, with an optional minus; ValueError otherwise.
    if not b or not (b.isdigit() or (b[:1] == b"-" and b[1:].isdigit())):
        raise ValueError("not a number")
    return int(b)


class RYLR:
    def __init__(self, uart, addr, network=18, params="9,7,1,12", password=None, clock=ticks_ms):
        if not 1 <= addr <= 65535:
            raise ValueError("address 1..65535")
        parse_params(params, network)  # a clear error at boot, not a module answering +ERR
        self.u = uart
        self.addr = addr
        self.clk = clock
        self.params = params
        self.mtu = MTU
        self.buf = bytearray()
        self.cmds = []  # [line, query_answer_prefix or None, set_line or None, tries]
        self.cur = None  # the command awaiting its answer
        self.sent_at = 0
        self.hold = clock()  # no command before this (busy back-off)
        self.rxq = []
        self.stats = {"sent": 0, "rcv": 0, "err": 0, "busy": 0, "timeout": 0,
                      "bad_frame": 0, "garbage": 0, "txq_full": 0, "rxq_full": 0}
        # Probe, wake, then query each setting and write it only when it
        # differs: the module keeps them in flash (as the Go driver does).
        self._cmd(b"AT")
        self._cmd(b"AT+MODE=0")
        self._ensure(b"ADDRESS", str(addr))
        self._ensure(b"NETWORKID", str(network))
        self._ensure(b"PARAMETER", params)
        if password:
            self._cmd(b"AT+CPIN=" + password.encode())
        self.ready = False
        self._cmd(b"AT", ready=True)

    def _cmd(self, line, ready=False):
        self.cmds.append([line, None, None, 0, ready])

    def _ensure(self, name, want):
        self.cmds.append([b"AT+" + name + b"?", b"+" + name + b"=", b"AT+" + name + b"=" + want.encode(), 0, False])

    # ---- the node's radio interface ----
    def mac(self):
        return bytes((self.addr >> 8, self.addr & 0xFF))

    def airtime_ms(self, n):
        """Time on air in ms of a packet of n bytes: its frame is as long
        (the version byte dropped, a byte before each run), plus the
        module's 8."""
        return airtime_ms(self.params, n + AIR_OVERHEAD)

    def pending(self):
        """Packets handed to us and not yet taken by the module."""
        n = sum(1 for c in self.cmds if c[0][:8] == b"AT+SEND=")
        return n + (1 if self.cur is not None and self.cur[0][:8] == b"AT+SEND=" else 0)

    def send(self, mac, b):
        """Queue packet b for address mac (2 bytes; 6 x 0xFF, the node's
        broadcast, is address 0). Returns False when it is not taken."""
        if mac == BCAST6:
            a = 0
        else:
            a = (mac[0] << 8) | mac[1]
        try:
            f = frame(b)
        except FrameError:
            self.stats["bad_frame"] += 1
            return False
        if sum(1 for c in self.cmds if c[0][:8] == b"AT+SEND=") >= TXQ:
            self.stats["txq_full"] += 1
            return False
        self.cmds.append([("AT+SEND=%d,%d," % (a, len(f))).encode() + f, None, None, 0, False])
        return True

    def recv(self):
        # The node calls recv until it is empty, every step: the UART
        # moves here.
        if not self.rxq:
            self.poll()
        if not self.rxq:
            return None
        return self.rxq.pop(0)

    def on(self, on):
        self._cmd(b"AT+MODE=0" if on else b"AT+MODE=1")

    # ---- the UART ----
    def poll(self):
        now = self.clk()
        n = self.u.any()
        if n:
            d = self.u.read(n)
            if d:
                self._feed(d)
        if self.cur is not None and ticks_diff(now, self.sent_at) >= CMD_MS:
            self.stats["timeout"] += 1
            self.cur = None
        if self.cur is None and self.cmds and ticks_diff(now, self.hold) >= 0:
            self.cur = self.cmds.pop(0)
            self.sent_at = now
            self.u.write(self.cur[0] + b"\r\n")

    def _feed(self, d):
        self.buf.extend(d)
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                break
            line = bytes(self.buf[:i])
            self.buf = self.buf[i + 1:]
            if line[-1:] == b"\r":
                line = line[:-1]
            if line:
                self._line(line)
        if len(self.buf) > LINE_MAX:
            self.stats["garbage"] += 1
            self.buf = bytearray()

    def _line(self, line):
        if line[:5] == b"+RCV=":
            self._rcv(line[5:])
            return
        c = self.cur
        if c is None:
            # +READY after a reset, or noise: nothing waits for it.
            return
        if line == b"+OK":
            self.cur = None
            if c[0][:8] == b"AT+SEND=":
                self.stats["sent"] += 1
                # The module sends the frame now, and refuses commands
                # (+ERR=17) until it is out: the next one waits for its
                # airtime, as the Go driver's does, instead of asking
                # every 20 ms (a frame is 0.1 to 2 s of air).
                n = _int(c[0][8:].split(b",", 2)[1])
                self.hold = ticks_add(self.clk(), int(self.airtime_ms(n)) + 1)
            if c[4]:
                self.ready = True
        elif line[:5] == b"+ERR=":
            self.cur = None
            if line == b"+ERR=17" and c[0][:8] == b"AT+SEND=" and c[3] < BUSY_TRIES:
                # Still sending the last frame: again, after a pause.
                self.stats["busy"] += 1
                c[3] += 1
                self.cmds.insert(0, c)
                self.hold = ticks_add(self.clk(), BUSY_MS)
            else:
                self.stats["err"] += 1
        elif c[1] is not None and line[:len(c[1])] == c[1]:
            self.cur = None
            if line[len(c[1]):] != c[2][len(c[1]) + 2:]:
                self.cmds.insert(0, [c[2], None, None, 0, False])

    def _rcv(self, s):
        # src,len,frame,rssi,snr: the frame is taken by its length (it may
        # hold commas and CR).
        try:
            i = s.index(b",")
            src = _int(s[:i])
            j = s.index(b",", i + 1)
            n = _int(s[i + 1:j])
            if not 0 <= src <= 65535 or not 0 < n <= MTU or len(s) < j + 1 + n + 4:
                raise ValueError("short")
            f = s[j + 1:j + 1 + n]
            tail = s[j + 1 + n:]
            if tail[:1] != b",":
                raise ValueError("no signal")
            rs = tail[1:].split(b",")
            if len(rs) != 2:
                raise ValueError("signal")
            _int(rs[0])
            _int(rs[1])
            pkt = unframe(f)
        except ValueError:  # FrameError is one
            self.stats["bad_frame"] += 1
            return
        if len(self.rxq) >= RXQ:
            self.stats["rxq_full"] += 1
            return
        self.stats["rcv"] += 1
        self.rxq.append((bytes((src >> 8, src & 0xFF)), pkt))
