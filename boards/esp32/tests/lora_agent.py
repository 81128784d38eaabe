# The agent of hil/rig's LoRa link test (lora_test.go): the firmware's
# RYLR-998 link (rylr.py) on machine.UART(1), which the rig wires to an
# emulated module. Every packet heard is printed and sent back to its
# sender; "SEND <addr hex> <packet hex>" sends one; "STATS" prints the
# link's counters.
import json
import sys

import machine
import rylr

link = None


def out(s):
    sys.stdout.write(s + "\r\n")


def start():
    global link
    link = rylr.RYLR(machine.UART(1, baudrate=115200), 1, params="7,9,1,12")
    out("LORA " + str(link.addr))


def step():
    link.poll()
    f = link.recv()
    if f is not None:
        src, pkt = f
        out("RX " + src.hex() + " " + pkt.hex())
        link.send(src, pkt)


def line(s):
    p = s.split()
    if p and p[0] == "SEND" and len(p) == 3:
        ok = link.send(bytes.fromhex(p[1]), bytes.fromhex(p[2]))
        out("QUEUED " + str(ok))
    elif p and p[0] == "STATS":
        st = dict(link.stats)
        st["ready"] = link.ready
        out("STATS " + json.dumps(st))
