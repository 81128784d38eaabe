# Run by TestVirtualBoardClock under the virtual board's host with
# wallstep.cjs preloaded: how far time.ticks_ms() moves while the host's
# wall clock steps back a minute, then forward two.
import js
import json
import time

a = time.ticks_ms()
js.wallClockStep(-60000)
b = time.ticks_ms()
js.wallClockStep(120000)
c = time.ticks_ms()
print(json.dumps({"back_ms": time.ticks_diff(b, a), "forward_ms": time.ticks_diff(c, b)}))
