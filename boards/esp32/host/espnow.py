# espnow stand-in: MicroPython's ESPNow API (active, add_peer, send, irecv)
# over the virtual board's radio (the vradio module its host registers:
# frames go to the rig, which puts real ESP-NOW frames on the air) or, under
# CPython, an in-process bus shared by the nodes of one test.


try:
    import vradio
except ImportError:
    vradio = None

# CPython: mac -> list of (src, msg) waiting; every ESPNow in the process.
_bus = {}


class ESPNow:
    def __init__(self):
        self._on = False

    def active(self, on=None):
        if on is not None:
            self._on = bool(on)
        return self._on

    def add_peer(self, mac, *a, **k):
        pass

    def send(self, mac, msg, sync=True):
        if not self._on:
            raise OSError("ESP-NOW not active")
        if vradio is not None:
            vradio.send(bytes(mac).hex(), bytes(msg).hex())
            return True
        import network
        me = network._mac
        for dst, q in _bus.items():
            if dst != me and (mac == b"\xff" * 6 or mac == dst) and network._up.get(dst, True):
                q.append((me, bytes(msg)))
        return True

    def irecv(self, timeout_ms=None):
        if vradio is not None:
            s = vradio.recv()
            if s is None:
                return [None, None]
            return [bytes.fromhex(s[:12]), bytes.fromhex(s[12:])]
        import network
        q = _bus.setdefault(network._mac, [])
        if not q:
            return [None, None]
        return list(q.pop(0))

    recv = irecv
