# agent: the control agent on the USB serial port. JSON lines in, JSON lines
# out: replies (with "re" echoing a request's "id") and events. The rig
# (hil/) drives boards through it; docs/hil.md lists the commands.
import gc
import json
import sys
from binascii import hexlify, unhexlify, a2b_base64

import mnode
import mpkt

node = None
radio = None
cfg = {}
got = []  # Packages received: newest last, at most 32
peak = [0]
MAX_LINE = 512


def out(d):
    sys.stdout.write(json.dumps(d))
    sys.stdout.write("\n")


def _blob(req):
    if "data" in req:
        return a2b_base64(req["data"].encode())
    n = int(req["size"])
    if not 0 < n <= 65536:
        raise ValueError("size %d out of range (1..65536)" % n)
    g = req.get("gen", 7)
    b = bytearray(n)  # filled in place: a list of n ints would cost 4n bytes
    for i in range(n):
        b[i] = (i * g + 3) & 255
    return bytes(b)


def _app(s):
    if len(s) == 32:
        return unhexlify(s)
    return mpkt.app_id(s, "", 1)  # an app name, as `mycelium send --app NAME`


def _on_app(app):
    def h(nid, mac, blob):
        got.append({"app": hexlify(app).decode(), "from": hexlify(nid).decode() if nid else "",
                    "mac": mnode._mac(mac), "size": len(blob),
                    "sha256": hexlify(__import__("hashlib").sha256(blob).digest()).decode()})
        if len(got) > 32:
            got.pop(0)
        out({"event": "received", "app": hexlify(app).decode(), "size": len(blob)})
    return h


def _sent(rid, t0):
    def cb(code):
        out({"event": "sent", "id": rid, "ok": code == 0, "error": mnode.ERRORS.get(code, code) if code else "",
             "ms": mnode.ticks_diff(mnode.ticks_ms(), t0)})
    return cb


def mem():
    gc.collect()
    return gc.mem_alloc()


def line(s):
    """Handle one request line."""
    try:
        req = json.loads(s)
        cmd = req["cmd"]
    except (ValueError, KeyError, TypeError):
        out({"ok": False, "error": "bad request: want a JSON object with cmd"})
        return
    rid = req.get("id")
    try:
        r = _do(cmd, req, rid)
    except (ValueError, KeyError, TypeError) as e:
        r = {"ok": False, "error": "%s: %s" % (cmd, e)}
    if r is not None:
        r["re"] = rid
        out(r)


def _do(cmd, req, rid):
    if cmd == "info":
        return {"ok": True, "node_id": hexlify(node.nid).decode(), "mac": mnode._mac(radio.mac()),
                "platform": sys.platform, "mem_alloc": mem(), "mem_peak": peak[0],
                "sleep": node.sleep, "apps": [hexlify(a).decode() for a in node.apps]}
    if cmd == "send":
        nid = unhexlify(req["to"])
        blob = _blob(req)
        routed = None
        if req.get("routed"):
            # Through our proxy to a leased or tree address: (tree_state, to).
            ts = int(req["tree_state"])
            to = unhexlify(req["addr"])
            frm = None
            for t, s, a in node.leases:
                if s == ts:
                    frm = a
            if frm is None:
                return {"ok": False, "error": "send: no lease in tree_state %d" % ts}
            routed = (ts, to, frm, 0)
        node.send(nid, _app(req["app"]), blob, _sent(rid, mnode.ticks_ms()), routed)
        blob = None
        return {"ok": True}
    if cmd == "listen":
        app = _app(req["app"])
        node.register(app, _on_app(app))
        return {"ok": True, "app": hexlify(app).decode()}
    if cmd == "received":
        r = list(got)
        if req.get("clear"):
            got.clear()
        return {"ok": True, "received": r}
    if cmd == "peers":
        return {"ok": True, "peers": node.peer_list()}
    if cmd == "leases":
        return {"ok": True, "proxy": mnode._mac(node.proxy) if node.proxy else "",
                "leases": [{"tree": t, "tree_state": s, "addr": hexlify(a).decode()} for t, s, a in node.leases]}
    if cmd == "stats":
        st = dict(node.stats)
        st["mem_alloc"] = mem()
        st["mem_peak"] = peak[0]
        if hasattr(radio, "stats"):
            # The RYLR-998 link's own counters (rylr.py).
            st["lora"] = dict(radio.stats)
            st["radio_errors"] = radio.stats["err"] + radio.stats["timeout"] + radio.stats["txq_full"]
        else:
            st["radio_errors"] = radio.errors
        if node.unknown_app:
            st["unknown_app_last"] = hexlify(node.unknown_app).decode()
        return {"ok": True, "stats": st}
    if cmd == "sleep":
        node.set_sleep(req["on"])
        return {"ok": True, "sleep": node.sleep}
    if cmd == "reset":
        out({"ok": True, "re": rid})
        import machine
        machine.reset()
    return {"ok": False, "error": "unknown command %r" % cmd}


def load_config(path="mycelium.json"):
    with open(path) as f:
        return json.load(f)


def start():
    global node, radio, cfg
    import radio as radio_mod
    cfg = load_config()
    lora = cfg.get("lora")
    if lora:
        # A RYLR-998 on a UART instead of ESP-NOW (docs/hil.md).
        import machine
        import rylr
        radio = rylr.RYLR(machine.UART(lora.get("uart", 1), baudrate=lora.get("baud", 115200)),
                          lora["address"], network=lora.get("network_id", 18),
                          params=lora.get("params", "9,7,1,12"))
    else:
        radio = radio_mod.Radio(cfg.get("channel", 14))
    ncfg = {"node_id": unhexlify(cfg["node_id"]), "beacon_ms": cfg.get("beacon_ms", 60000),
            "giveup_ms": cfg.get("giveup_ms", 30000), "rx_budget": cfg.get("rx_budget", 16384),
            "sleep": cfg.get("sleep", False), "lora": bool(lora)}
    node = mnode.Node(radio, ncfg)
    node.sample = _sample
    for a in cfg.get("apps") or []:
        app = _app(a)
        node.register(app, _on_app(app))
    gc.collect()
    out({"event": "boot", "node_id": cfg["node_id"], "mac": mnode._mac(radio.mac()), "mem_alloc": gc.mem_alloc()})


_n = [0]


def _sample():
    gc.collect()
    a = gc.mem_alloc()
    if a > peak[0]:
        peak[0] = a



def step():
    node.poll()
    _n[0] += 1
    # The live heap while a transfer is in progress, every 64 steps, and
    # where the node says it peaks: what gc.mem_alloc() says after a
    # collection (garbage not yet collected would overstate it).
    if _n[0] & 63 == 0 and (node.ins or node.out):
        _sample()


def run():
    """The board's main loop: stdin lines and the node, forever (Ctrl-C
    breaks out to the REPL, as the rig's raw-REPL upload needs)."""
    import select
    start()
    p = select.poll()
    p.register(sys.stdin, select.POLLIN)
    buf = ""
    while True:
        while p.poll(0):
            c = sys.stdin.read(1)
            if c == "\n" or c == "\r":
                if buf:
                    line(buf)
                buf = ""
            elif len(buf) < MAX_LINE:
                buf += c
        step()
