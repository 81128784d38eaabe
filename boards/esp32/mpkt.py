# mpkt: the Mycelium packet codec for the board (docs/protocol.md 2-3,
# PROTOCOL.md 1-5). Written for MicroPython first: no classes where a tuple
# will do, no per-packet allocation beyond the packet's own bytes.
import hashlib
import struct

try:
    from binascii import crc32 as _crc32
except ImportError:  # a MicroPython built without it
    _crc32 = None

VERSION = 0

# Flags byte (PROTOCOL 2.1).
F_ERROR = 0x80
F_THROTTLE = 0x40
F_MODE = 0x01
ENC_MASK = 0x38
ENC_NONE, ENC_ASK, ENC_ACK, ENC_RTX, ENC_RNS, ENC_NIA = 0, 1, 2, 3, 4, 5
ASK, ACK, RTX, RNS, NIA = 0x08, 0x10, 0x18, 0x20, 0x28


class CodecError(ValueError):
    """A packet or message the codec refuses (truncated, unknown schema)."""


def enc(flags):
    return (flags >> 3) & 7


def set_enc(flags, code):
    return (flags & ~ENC_MASK & 0xFF) | (code << 3)


def ack_flags(flags):
    """The flags of the ack that answers a packet with these flags."""
    return set_enc(flags, ENC_ACK)


# A schema is (wide, seq, routed, ck, max_packet): the ESP-NOW family 0-10
# and the LoRa family 20-30 share field lists (20 like 0, ...): packet_id
# (2 bytes when wide), then seq_id and seq_size (as wide as packet_id),
# ttl, checksum, and tree_state, to_addr, from_addr.
_LAYOUT = (
    (0, 0, 0, 0), (0, 0, 0, 1), (0, 1, 0, 0), (0, 1, 0, 1), (1, 1, 0, 1),
    (0, 0, 1, 0), (0, 0, 1, 1), (0, 1, 1, 0), (0, 1, 1, 1), (1, 1, 1, 0),
    (1, 1, 1, 1),
)


def schema(sid):
    """(wide, seq, routed, ck, header_size, max_body) or None if invalid."""
    if 0 <= sid <= 10:
        mp = 250
        l = _LAYOUT[sid]
    elif 20 <= sid <= 30:
        mp = 240
        l = _LAYOUT[sid - 20]
    else:
        return None
    wide, seq, routed, ck = l
    n = 4 + (2 if wide else 1)
    if seq:
        n += 3 if wide else 2
        # seq_id is one byte; seq_size as wide as packet_id
    if routed:
        n += 1 + 1 + 32  # ttl, tree_state, to, from
    if ck:
        n += 4
    return (wide, seq, routed, ck, n, mp - n)


def max_body(sid):
    return schema(sid)[5]


def max_seq(sid):
    s = schema(sid)
    if not s[1]:
        return 1
    return 65536 if s[0] else 256


def crc32(b):
    if _crc32 is not None:
        return _crc32(b) & 0xFFFFFFFF
    c = 0xFFFFFFFF
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ (0xEDB88320 & -(c & 1))
    return c ^ 0xFFFFFFFF


class Packet:
    """One packet. Fields a schema lacks stay at their defaults."""

    def __init__(self, schema=0, flags=0, pid=0, body=b"", sid=0, ssz=0,
                 ttl=0, ts=0, to=bytes(16), frm=bytes(16), ck=None):
        self.schema = schema
        self.flags = flags
        self.pid = pid
        self.sid = sid
        self.ssz = ssz
        self.ttl = ttl
        self.ts = ts
        self.to = to
        self.frm = frm
        self.body = body
        # ck None: fill with crc32(body) when packing a checksum schema.
        self.ck = ck

    def ck_ok(self):
        s = schema(self.schema)
        return not s[3] or self.ck == crc32(self.body)

    def pack(self):
        s = schema(self.schema)
        if s is None:
            raise CodecError("invalid schema %d" % self.schema)
        wide, seq, routed, ck, hdr, mb = s
        if len(self.body) > mb:
            raise CodecError("body of %d bytes, schema %d carries %d" % (len(self.body), self.schema, mb))
        w = ">H" if wide else ">B"
        out = bytearray(hdr + len(self.body))
        out[0] = VERSION
        out[2] = self.schema
        out[3] = self.flags
        i = 4
        struct.pack_into(w, out, i, self.pid)
        i += 2 if wide else 1
        if seq:
            out[i] = self.sid
            struct.pack_into(w, out, i + 1, self.ssz)
            i += 3 if wide else 2
        if routed:
            out[i] = self.ttl
            i += 1
        if ck:
            c = crc32(self.body) if self.ck is None else self.ck
            struct.pack_into(">I", out, i, c)
            i += 4
        if routed:
            out[i] = self.ts
            out[i + 1:i + 17] = self.to
            out[i + 17:i + 33] = self.frm
            i += 33
        out[i:] = self.body
        return bytes(out)


def unpack(b):
    """Decode a packet; CodecError on anything malformed (never more)."""
    if len(b) < 4:
        raise CodecError("truncated: %d bytes" % len(b))
    if b[0] > VERSION:
        raise CodecError("version %d" % b[0])
    s = schema(b[2])
    if s is None:
        raise CodecError("invalid schema %d" % b[2])
    wide, seq, routed, ck, hdr, mb = s
    if len(b) < hdr:
        raise CodecError("truncated: %d bytes, schema %d header is %d" % (len(b), b[2], hdr))
    if len(b) > hdr + mb:
        raise CodecError("%d bytes, schema %d carries %d" % (len(b), b[2], hdr + mb))
    p = Packet(b[2], b[3])
    i = 4
    if wide:
        p.pid = (b[4] << 8) | b[5]
        i = 6
    else:
        p.pid = b[4]
        i = 5
    if seq:
        p.sid = b[i]
        if wide:
            p.ssz = (b[i + 1] << 8) | b[i + 2]
            i += 3
        else:
            p.ssz = b[i + 1]
            i += 2
    if routed:
        p.ttl = b[i]
        i += 1
    if ck:
        p.ck = struct.unpack_from(">I", b, i)[0]
        i += 4
    if routed:
        p.ts = b[i]
        p.to = bytes(b[i + 1:i + 17])
        p.frm = bytes(b[i + 17:i + 33])
        i += 33
    p.body = bytes(b[i:])
    return p


def half_sha256(b):
    return hashlib.sha256(b).digest()[:16]


def app_id(name, description, version):
    # MicroPython's struct wraps an out-of-range version silently; refuse it.
    if not 0 <= version <= 0xFFFFFFFF:
        raise CodecError("app version %d out of range" % version)
    return half_sha256(name.encode() + description.encode() + struct.pack(">I", version))


def iface_id(name, bitrate, schemas):
    return hashlib.sha256(name.encode() + struct.pack(">I", bitrate) + bytes(schemas)).digest()[:4]


def package(app, blob):
    """The serialized Package: app_id | half_sha256(blob) | blob."""
    return app + half_sha256(blob) + blob


def unpackage(b):
    """(app_id, hash, blob); CodecError if short or the hash is wrong."""
    if len(b) < 32:
        raise CodecError("Package of %d bytes" % len(b))
    h = bytes(b[16:32])
    blob = b[32:]
    if half_sha256(blob) != h:
        raise CodecError("Package hash mismatch")
    return bytes(b[:16]), h, blob


def asks(count):
    """The packet_ids that carry ask in a sequence of count packets (ours:
    fewer than 16 packets ask on the last only)."""
    if count < 16:
        return (count - 1,)
    return (0, count // 2, count - 1)


def cut(sid_schema, pkg, seq_id, asks_on, **routing):
    """The packets of a sequence carrying pkg in schema sid_schema; asks_on
    is the collection of packet_ids that carry ask."""
    mb = max_body(sid_schema)
    n = (len(pkg) + mb - 1) // mb or 1
    out = []
    for i in range(n):
        p = Packet(sid_schema, ASK if i in asks_on else 0, i, pkg[i * mb:(i + 1) * mb], seq_id, n - 1)
        for k in routing:
            setattr(p, k, routing[k])
        out.append(p)
    return out


# Beacon application (PROTOCOL 5.2): op | node_id | up to ten app_ids.
BEACON_APP = app_id("Beacon", "Dev Beacon App", 0)
OP_BEACON, OP_RESPONSE, OP_DISCONNECT = 0x00, 0x01, 0xFF


def beacon_msgs(op, node_id, apps):
    """Beacon messages listing apps, ten per message."""
    out = []
    i = 0
    while True:
        out.append(bytes([op]) + node_id + b"".join(apps[i:i + 10]))
        i += 10
        if i >= len(apps):
            return out


def beacon_parse(b):
    """(op, node_id, [app_id]); CodecError if short or ragged."""
    if len(b) < 33:
        raise CodecError("beacon of %d bytes" % len(b))
    if (len(b) - 33) % 16:
        raise CodecError("beacon app list of %d bytes" % (len(b) - 33))
    return b[0], bytes(b[1:33]), [bytes(b[i:i + 16]) for i in range(33, len(b), 16)]


# Routing [ours] (docs/protocol.md 8). Addresses in a lease grant and a
# path header are compact: length(1) ‖ the address's bytes up to its last
# non-zero one (at most 64; a trailing zero is refused).
MAX_TREES = 16
LONG_SIZE = 64
WIRE_SIZE = 16
PATH_APP = app_id("Mycelium", "path", 1)


def _compact(b, i):
    """(address bytes, next index) of the compact address at b[i]."""
    if i >= len(b):
        raise CodecError("compact address: empty")
    n = b[i]
    if n > LONG_SIZE or i + 1 + n > len(b):
        raise CodecError("compact address: %d bytes of %d" % (n, len(b) - i - 1))
    if n and b[i + n] == 0:
        raise CodecError("compact address: a trailing zero byte")
    return bytes(b[i + 1:i + 1 + n]), i + 1 + n


def grant_parse(b):
    """The leases of a lease grant, 0x31 ‖ count ‖ count × (tree ‖
    tree_state ‖ compact address), as [(tree, tree_state, 16-byte wire
    address)]. A lease deeper than a packet header's 16 bytes is left out:
    a leaf sends from its lease in the header, and could not from that
    one. CodecError if malformed."""
    if len(b) < 2 or b[0] != 0x31 or b[1] > MAX_TREES:
        raise CodecError("lease grant")
    out = []
    i = 2
    for _ in range(b[1]):
        if i + 3 > len(b):
            raise CodecError("lease grant: truncated")
        t, s = b[i], b[i + 1]
        a, i = _compact(b, i + 2)
        if s % MAX_TREES != t:
            raise CodecError("lease grant: tree %d, tree_state %d" % (t, s))
        if len(a) <= WIRE_SIZE:
            out.append((t, s, a + bytes(WIRE_SIZE - len(a))))
    if i != len(b):
        raise CodecError("lease grant: trailing bytes")
    return out


def unpath(b):
    """The Package a path header carries (l3-route/route/path.go):
    flags ‖ phase ‖ bound(8) ‖ n ‖ n × (tree_state ‖ compact address)
    [‖ m ‖ m × (…), flag 0x01] ‖ Package, as unpackage gives it."""
    if len(b) < 11 or b[0] & 0xFE:
        raise CodecError("path header")
    i = 10
    for k in range(2 if b[0] & 1 else 1):
        if i >= len(b):
            raise CodecError("path header: no address count")
        n = b[i]
        if n > MAX_TREES or n == 0:
            raise CodecError("path header: %d addresses" % n)
        if k == 0 and b[1] > n:
            raise CodecError("path header: phase %d of %d" % (b[1], n))
        i += 1
        for _ in range(n):
            if i >= len(b):
                raise CodecError("path header: truncated")
            _, i = _compact(b, i + 1)
    return unpackage(b[i:])
