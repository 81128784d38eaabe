# machine stand-in: reset() asks the virtual board's host for a hard reset
# (RAM lost, flash kept); unique_id() is the radio's MAC, as on an ESP32.
try:
    import vradio
except ImportError:
    vradio = None


def reset():
    if vradio is not None:
        vradio.reset()
    raise SystemExit("machine.reset")


def unique_id():
    import network
    return network.WLAN().config("mac")


def freq(*a):
    return 240000000


class UART:
    """machine.UART over the virtual board's host: what write() sends
    reaches the rig (which carries it to an emulated RYLR-998, hil/rig),
    and read() returns what came back, as the ESP32's UART driver buffers
    it (its RX buffer is bounded; the host drops what overflows it)."""

    def __init__(self, uid, baudrate=115200, **kw):
        if vradio is None:
            raise OSError("no UART on this host")
        self.id = uid
        self._rx = b""

    def _fill(self):
        s = vradio.uart_read()
        if s:
            self._rx += bytes.fromhex(s)

    def any(self):
        self._fill()
        return len(self._rx)

    def read(self, n=-1):
        self._fill()
        if not self._rx:
            return None
        if n < 0:
            n = len(self._rx)
        d, self._rx = self._rx[:n], self._rx[n:]
        return d

    def write(self, b):
        vradio.uart_write(bytes(b).hex())
        return len(b)
