# network stand-in: WLAN with active() and config(mac=, channel=), backed
# by the virtual board's radio (vradio) or, under CPython, the process's bus.
try:
    import vradio
except ImportError:
    vradio = None

STA_IF = 0
AP_IF = 1
_mac = b"\x02\x00\x00\x00\x00\x01"  # CPython: set by the test per node
_up = {}


class WLAN:
    def __init__(self, iface=STA_IF):
        self._on = False

    def active(self, on=None):
        if on is not None:
            self._on = bool(on)
            if vradio is not None:
                vradio.on(self._on)
            else:
                _up[_mac] = self._on
        return self._on

    def config(self, *args, **kw):
        if args and args[0] == "mac":
            if vradio is not None:
                return bytes.fromhex(vradio.mac())
            return _mac
        return None
