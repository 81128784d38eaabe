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
