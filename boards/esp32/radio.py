# radio: ESP-NOW through MicroPython's espnow and network modules (on a
# board: the real ones; under wasm MicroPython or CPython: the stand-ins in
# host/). The node sees send(mac, bytes), recv() and on(bool).
import espnow
import network

BCAST = b"\xff" * 6


class Radio:
    def __init__(self, channel):
        self.w = network.WLAN(network.STA_IF)
        self.w.active(True)
        try:
            self.w.config(channel=channel)
        except (OSError, ValueError):
            pass  # already on it, or the stand-in does not tune
        self.e = espnow.ESPNow()
        self.e.active(True)
        self.known = set()
        self.errors = 0

    def mac(self):
        return bytes(self.w.config("mac"))

    def send(self, mac, b):
        if mac not in self.known:
            try:
                self.e.add_peer(mac)
            except OSError:
                pass  # already added (ESP_ERR_ESPNOW_EXIST) or the table is full
            self.known.add(mac)
        try:
            self.e.send(mac, b, False)
        except OSError:
            self.errors += 1

    def recv(self):
        mac, msg = self.e.irecv(0)
        if mac is None:
            return None
        # irecv reuses its buffers: copy.
        return bytes(mac), bytes(msg)

    def on(self, on):
        # Modem sleep: the radio off between wake windows.
        self.w.active(on)
