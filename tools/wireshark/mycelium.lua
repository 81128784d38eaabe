-- Wireshark dissector for the Mycelium mesh protocol (docs/protocol.md).
--
-- It finds mesh packets in three places:
--   * ESP-NOW: 802.11 vendor-specific action frames with Espressif's OUI
--     (18:fe:34), v1 (one vendor element) and v2 (a chain of elements);
--   * UDP on the mesh port (4242 unless the preference says otherwise);
--   * LINKTYPE_USER0 (147), the link type of the captures `mycelium sim
--     --pcap` and capture.Tap write for links without 802.11 framing (LoRa).
--
-- Every header field is shown, the flags by name, all 33 schemas (0-10
-- ESP-NOW, 20-30 LoRa, 40-50 our ESP-NOW v2). A body that is a Package
-- (app_id, half-SHA-256, blob) has its hash checked; sequences are
-- reassembled where the capture names the sender (ESP-NOW, UDP). The
-- Beacon, tree, route, stream and segment messages are decoded, and path
-- headers (route/path.go): flags, phase, bound, the destination's and the
-- origin's addresses, the attempt's nonce, then the carried Package as any
-- other. A bad
-- checksum or hash is an expert error.
--
-- Install: copy this file into Wireshark's personal Lua plugins folder
-- (Help > About Wireshark > Folders > Personal Lua Plugins; on Linux
-- ~/.local/lib/wireshark/plugins/) and restart Wireshark, or run
--   tshark -X lua_script:tools/wireshark/mycelium.lua -r capture.pcap

local bit = bit32
if bit == nil then
	-- Lua 5.3 and later (Wireshark 4.4+): integer operators, written as a
	-- chunk so that Lua 5.2 can still parse this file.
	bit = load([[
		local M = 0xffffffff
		return {
			band = function(a, b, c) if c then return a & b & c end return a & b end,
			bor = function(a, b) return a | b end,
			bxor = function(a, b, c) if c then return (a ~ b ~ c) & M end return (a ~ b) & M end,
			bnot = function(a) return (~a) & M end,
			rshift = function(a, n) return (a & M) >> n end,
			lshift = function(a, n) return (a << n) & M end,
			rrotate = function(a, n) a = a & M return ((a >> n) | (a << (32 - n))) & M end,
		}
	]])()
end
local band, bxor, bnot, rshift, rrotate = bit.band, bit.bxor, bit.bnot, bit.rshift, bit.rrotate
local unpack = table.unpack or unpack

---------------------------------------------------------------------------
-- Hashes: SHA-256 (Package hashes) and CRC-32 (checksums), in plain Lua.

local K256 = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}
local TWO32 = 4294967296

-- sha256 returns the SHA-256 of the string s as 64 hex digits.
local function sha256(s)
	local H = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }
	local bits = #s * 8
	local len = {}
	for i = 8, 1, -1 do
		len[i] = string.char(bits % 256)
		bits = math.floor(bits / 256)
	end
	s = s .. "\128" .. string.rep("\0", (55 - #s) % 64) .. table.concat(len)
	local w = {}
	for i = 1, #s, 64 do
		for j = 0, 15 do
			local a, b, c, d = s:byte(i + j * 4, i + j * 4 + 3)
			w[j] = ((a * 256 + b) * 256 + c) * 256 + d
		end
		for j = 16, 63 do
			local v15, v2 = w[j - 15], w[j - 2]
			local s0 = bxor(rrotate(v15, 7), rrotate(v15, 18), rshift(v15, 3))
			local s1 = bxor(rrotate(v2, 17), rrotate(v2, 19), rshift(v2, 10))
			w[j] = (w[j - 16] + s0 + w[j - 7] + s1) % TWO32
		end
		local a, b, c, d, e, f, g, h = unpack(H)
		for j = 0, 63 do
			local S1 = bxor(rrotate(e, 6), rrotate(e, 11), rrotate(e, 25))
			local ch = bxor(band(e, f), band(bnot(e), g))
			local t1 = (h + S1 + ch + K256[j + 1] + w[j]) % TWO32
			local S0 = bxor(rrotate(a, 2), rrotate(a, 13), rrotate(a, 22))
			local maj = bxor(band(a, b), band(a, c), band(b, c))
			h, g, f, e, d, c, b, a = g, f, e, (d + t1) % TWO32, c, b, a, (t1 + S0 + maj) % TWO32
		end
		H[1], H[2], H[3], H[4] = (H[1] + a) % TWO32, (H[2] + b) % TWO32, (H[3] + c) % TWO32, (H[4] + d) % TWO32
		H[5], H[6], H[7], H[8] = (H[5] + e) % TWO32, (H[6] + f) % TWO32, (H[7] + g) % TWO32, (H[8] + h) % TWO32
	end
	local out = {}
	for i = 1, 8 do
		out[i] = string.format("%08x", H[i])
	end
	return table.concat(out)
end

local CRC = {}
for i = 0, 255 do
	local c = i
	for _ = 1, 8 do
		if band(c, 1) ~= 0 then
			c = bxor(0xedb88320, rshift(c, 1))
		else
			c = rshift(c, 1)
		end
	end
	CRC[i] = c
end

-- crc32 returns the IEEE CRC-32 of the string s.
local function crc32(s)
	local c = 0xffffffff
	for i = 1, #s do
		c = bxor(CRC[band(bxor(c, s:byte(i)), 0xff)], rshift(c, 8))
	end
	return bxor(c, 0xffffffff)
end

local function tohex(s)
	return (s:gsub(".", function(ch) return string.format("%02x", ch:byte()) end))
end

---------------------------------------------------------------------------
-- The protocol's tables (l2-seq/packet/schema.go, docs/protocol.md).

-- Field sizes of schemas 0-10: packet_id, seq_id, seq_size, ttl,
-- checksum, route (tree_state + two addresses). 20-30 and 40-50 repeat them.
local LAYOUTS = {
	[0] = { 1, 0, 0, 0, 0, 0 }, { 1, 0, 0, 0, 4, 0 }, { 1, 1, 1, 0, 0, 0 }, { 1, 1, 1, 0, 4, 0 },
	{ 2, 1, 2, 0, 4, 0 }, { 1, 0, 0, 1, 0, 33 }, { 1, 0, 0, 1, 4, 33 }, { 1, 1, 1, 1, 0, 33 },
	{ 1, 1, 1, 1, 4, 33 }, { 2, 1, 2, 1, 0, 33 }, { 2, 1, 2, 1, 4, 33 },
}
local FAMILIES = { [0] = { "ESP-NOW", 250 }, [20] = { "LoRa", 240 }, [40] = { "ESP-NOW v2", 1470 } }

-- schemaOf returns the layout, family name and datagram limit of id, or nil.
local function schemaOf(id)
	for base, fam in pairs(FAMILIES) do
		if id >= base and id <= base + 10 then
			return LAYOUTS[id - base], fam[1], fam[2]
		end
	end
	return nil
end

local SCHEMA_NAMES = {}
for base, fam in pairs(FAMILIES) do
	for i = 0, 10 do
		local l = LAYOUTS[i]
		local what = {}
		if l[2] ~= 0 then what[#what + 1] = "sequenced" end
		if l[6] ~= 0 then what[#what + 1] = "routed" end
		if l[5] ~= 0 then what[#what + 1] = "checksum" end
		if #what == 0 then what[1] = "single" end
		SCHEMA_NAMES[base + i] = fam[1] .. " " .. table.concat(what, ", ")
	end
end

local ENCODED = { [0] = "none", "ask", "ack", "rtx", "rns", "nia", "unused (6)", "reserved (7)" }

-- Known applications: half_sha256(name ‖ description ‖ u32 version).
local APPS = {
	["366821dafdaf45e9bc5cfecb1c2a065c"] = "Beacon",
	["385a3665fd4f93b0e63607f514a77755"] = "Mycelium capabilities",
	["6f7df7e4e0163f1b8a4b0408d1b7ca98"] = "Mycelium modem sleep",
	["49b10ad6a816efeb5bea87cf9ebfa4aa"] = "Mycelium espnow v2",
	["91b8e5e37b8b9f430c84d3ca702b5bd1"] = "Mycelium route",
	["7fa0d64bed129dc9375581165b82877e"] = "Mycelium tree",
	["8ee8a2f811942726e03d1059746ea63f"] = "Mycelium stream",
	["2b74730ef98dfa9466e67582807b5688"] = "Mycelium segment",
	["a38f6b6592e83f1cd84798dd986744d9"] = "Mycelium ping",
	["1179119e159558359fa89d9acd9565eb"] = "mycelium-sim simulated traffic",
	["8820c487823d921b5ff38ba895eb078d"] = "mycelium-sim route probe",
	["4792548f6c81271ef9a420fa15a269b1"] = "Mycelium path",
	["2b5d07c65ca20bd7ce90059830de7036"] = "Mycelium signed broadcast",
}
local APP_BEACON = "366821dafdaf45e9bc5cfecb1c2a065c"
local APP_TREE = "7fa0d64bed129dc9375581165b82877e"
local APP_ROUTE = "91b8e5e37b8b9f430c84d3ca702b5bd1"
local APP_STREAM = "8ee8a2f811942726e03d1059746ea63f"
local APP_SEGMENT = "2b74730ef98dfa9466e67582807b5688"
local APP_PATH = "4792548f6c81271ef9a420fa15a269b1"

local ERROR_CODES = {
	[1] = "no route", [2] = "hop limit", [3] = "unknown application", [4] = "peer asleep", [5] = "abandoned",
	[6] = "checksum", [7] = "no memory", [8] = "bad hash", [9] = "throttled", [10] = "too large",
	[11] = "no schema", [12] = "unknown peer", [13] = "busy", [14] = "closed", [15] = "link",
	[16] = "reference length", [17] = "source", [18] = "stream lost",
}
local BEACON_OPS = { [0x00] = "beacon", [0x01] = "beacon response", [0xff] = "disconnect" }
local TREE_TYPES = {
	[0x00] = "claim", [0x0f] = "notify", [0x0d] = "position", [0x0e] = "query", [0x0c] = "suffix",
	[0xf0] = "request", [0xff] = "response",
}
local TREE_STATUS = {
	[0] = "ok", [1] = "no position", [2] = "full", [3] = "too deep", [4] = "refused", [5] = "wait",
	[6] = "certificate",
}
local ROUTE_TYPES = {
	[0x01] = "receipt", [0x02] = "error", [0x03] = "signed receipt", [0x04] = "signed error", [0x05] = "signed receipt (nonce)", [0x10] = "register", [0x13] = "registered", [0x11] = "lookup",
	[0x12] = "lookup reply", [0x20] = "trace", [0x21] = "trace report", [0x14] = "name register",
	[0x15] = "name stored", [0x16] = "name lookup", [0x17] = "name reply", [0x18] = "name hello",
	[0x30] = "lease request", [0x31] = "lease grant", [0x40] = "renew", [0x41] = "renew via",
	[0x42] = "signed renew", [0x43] = "signed renew via",
}
local STREAM_TYPES = { [1] = "open", [2] = "data", [3] = "end", [4] = "result", [5] = "abort" }
local STATUS_STATES = { [0] = "in progress", [1] = "complete", [2] = "no such sequence", [3] = "nothing received" }

-- coords decodes a 16-byte tree address (a Lua string) into "3,1" ("" for
-- the root), as addr.Address.String does: nibbles high first, 1-7 one
-- nibble, 8-135 two (1xxx xxxx), a zero nibble ends it, the 32nd nibble
-- may hold 1-15 alone.
local function coords(s)
	local n = {}
	for i = 1, 16 do
		local b = s:byte(i)
		n[#n + 1] = math.floor(b / 16)
		n[#n + 1] = b % 16
	end
	local out, i = {}, 1
	while i <= 32 do
		local v = n[i]
		if v == 0 then break end
		if i == 32 or v < 8 then
			out[#out + 1] = tostring(v)
			i = i + 1
		else
			out[#out + 1] = tostring((v - 8) * 16 + n[i + 1] + 8)
			i = i + 2
		end
	end
	return table.concat(out, ",")
end

-- longCoords decodes the bytes of a compact Long (a Lua string of up to 64
-- bytes, zeros after it) as addr.Long.String does: the same code over 128
-- nibbles, where a two-nibble coordinate cannot start at the last one.
local function longCoords(s)
	local out, i, nibs = {}, 1, #s * 2
	local function nib(k)
		if k > nibs then return 0 end
		local b = s:byte(math.floor((k - 1) / 2) + 1)
		if k % 2 == 1 then return math.floor(b / 16) end
		return b % 16
	end
	while i <= 128 do
		local v = nib(i)
		if v == 0 or (v >= 8 and i == 128) then break end
		if v < 8 then
			out[#out + 1] = tostring(v)
			i = i + 1
		else
			out[#out + 1] = tostring((v - 8) * 16 + nib(i + 1) + 8)
			i = i + 2
		end
	end
	return table.concat(out, ",")
end

---------------------------------------------------------------------------
-- Fields.

local p = Proto("mycelium", "Mycelium mesh")
local pe = Proto("mycelium_espnow", "ESP-NOW (Mycelium)")

local F = {
	version = ProtoField.uint8("mycelium.version", "Version", base.DEC),
	reserved = ProtoField.uint8("mycelium.reserved", "Reserved", base.DEC),
	hop_counter = ProtoField.uint32("mycelium.hop.counter", "Hop counter", base.DEC),
	hop_tag = ProtoField.bytes("mycelium.hop.tag", "Hop tag (HMAC-SHA256, 8 bytes)"),
	schema = ProtoField.uint8("mycelium.schema", "Schema", base.DEC, SCHEMA_NAMES),
	family = ProtoField.string("mycelium.family", "Family"),
	flags = ProtoField.uint8("mycelium.flags", "Flags", base.HEX),
	f_error = ProtoField.bool("mycelium.flags.error", "Error", 8, nil, 0x80),
	f_throttle = ProtoField.bool("mycelium.flags.throttle", "Throttle", 8, nil, 0x40),
	f_encoded = ProtoField.uint8("mycelium.flags.encoded", "Encoded", base.DEC, ENCODED, 0x38),
	f_res1 = ProtoField.bool("mycelium.flags.reserved1", "Reserved 1", 8, nil, 0x04),
	f_res2 = ProtoField.bool("mycelium.flags.reserved2", "Reserved 2", 8, nil, 0x02),
	f_mode = ProtoField.bool("mycelium.flags.mode", "Mode (common-prefix metric)", 8, nil, 0x01),
	flag_names = ProtoField.string("mycelium.flag_names", "Flag names"),
	packet_id = ProtoField.uint16("mycelium.packet_id", "Packet id", base.DEC),
	seq_id = ProtoField.uint8("mycelium.seq_id", "Sequence id", base.DEC),
	seq_size = ProtoField.uint16("mycelium.seq_size", "Sequence size - 1", base.DEC),
	ttl = ProtoField.uint8("mycelium.ttl", "TTL", base.DEC),
	checksum = ProtoField.uint32("mycelium.checksum", "Checksum", base.HEX),
	checksum_ok = ProtoField.bool("mycelium.checksum_ok", "Checksum good"),
	tree_state = ProtoField.uint8("mycelium.tree_state", "Tree state", base.DEC),
	to_addr = ProtoField.bytes("mycelium.to_addr", "To address"),
	to_coords = ProtoField.string("mycelium.to_coords", "To coordinates"),
	from_addr = ProtoField.bytes("mycelium.from_addr", "From address"),
	from_coords = ProtoField.string("mycelium.from_coords", "From coordinates"),
	body = ProtoField.bytes("mycelium.body", "Body"),
	body_len = ProtoField.uint16("mycelium.body_len", "Body length", base.DEC),
	err_code = ProtoField.uint8("mycelium.error_code", "Error code", base.DEC, ERROR_CODES),
	st_state = ProtoField.uint8("mycelium.status.state", "Status", base.DEC, STATUS_STATES),
	st_hi = ProtoField.uint16("mycelium.status.hi", "Highest packet_id received", base.DEC),
	st_base = ProtoField.uint16("mycelium.status.base", "First missing", base.DEC),
	st_bitmap = ProtoField.bytes("mycelium.status.bitmap", "Missing bitmap"),
	seq_chunk = ProtoField.string("mycelium.sequence", "Sequence"),

	pkg_app = ProtoField.bytes("mycelium.package.app_id", "app_id"),
	pkg_app_name = ProtoField.string("mycelium.package.app_name", "Application"),
	pkg_hash = ProtoField.bytes("mycelium.package.hash", "Hash (half SHA-256)"),
	pkg_hash_ok = ProtoField.bool("mycelium.package.hash_ok", "Hash good"),
	pkg_blob = ProtoField.bytes("mycelium.package.blob", "Blob"),
	pkg_len = ProtoField.uint32("mycelium.package.blob_len", "Blob length", base.DEC),

	bc_op = ProtoField.uint8("mycelium.beacon.op", "Op", base.HEX, BEACON_OPS),
	bc_node = ProtoField.bytes("mycelium.beacon.node_id", "node_id"),
	bc_app = ProtoField.bytes("mycelium.beacon.app_id", "app_id"),
	bc_app_name = ProtoField.string("mycelium.beacon.app_name", "Application"),

	tr_type = ProtoField.uint8("mycelium.tree.type", "Tree message", base.HEX, TREE_TYPES),
	tr_tree = ProtoField.uint8("mycelium.tree.tree", "Tree", base.DEC),
	tr_ts = ProtoField.uint8("mycelium.tree.tree_state", "Tree state", base.DEC),
	tr_root = ProtoField.bytes("mycelium.tree.root", "Root key"),
	tr_term = ProtoField.uint64("mycelium.tree.term_start", "Term start (Unix ns)", base.DEC),
	tr_time = ProtoField.uint64("mycelium.tree.time", "Time (Unix ns)", base.DEC),
	tr_sig = ProtoField.bytes("mycelium.tree.signature", "Signature"),
	tr_hops = ProtoField.uint8("mycelium.tree.hops", "Hops to the root", base.DEC),
	tr_count = ProtoField.uint8("mycelium.tree.certificates", "Certificates", base.DEC),
	tr_child = ProtoField.bytes("mycelium.tree.child", "Child key"),
	tr_index = ProtoField.uint8("mycelium.tree.index", "Index at the parent", base.DEC),
	tr_key = ProtoField.bytes("mycelium.tree.key", "Key"),
	tr_want = ProtoField.uint8("mycelium.tree.want", "Certificates wanted (0: all)", base.DEC),
	tr_flags = ProtoField.uint8("mycelium.tree.flags", "Request flags (0x01: I hold your chain)", base.HEX),
	tr_depth = ProtoField.uint8("mycelium.tree.depth", "Depth", base.DEC),
	tr_status = ProtoField.uint8("mycelium.tree.status", "Status", base.DEC, TREE_STATUS),
	tr_addr = ProtoField.string("mycelium.tree.address", "Address"),

	rt_type = ProtoField.uint8("mycelium.route.type", "Route message", base.HEX, ROUTE_TYPES),
	rt_hash = ProtoField.bytes("mycelium.route.hash", "Package hash"),
	rt_code = ProtoField.uint8("mycelium.route.code", "Error code", base.DEC, ERROR_CODES),
	rt_addr = ProtoField.bytes("mycelium.route.address", "Address"),
	rt_coords = ProtoField.string("mycelium.route.coords", "Coordinates"),
	rt_node = ProtoField.bytes("mycelium.route.node_id", "node_id"),
	rt_signer = ProtoField.bytes("mycelium.route.signer", "Signer"),
	rt_time = ProtoField.uint64("mycelium.route.time", "Time (Unix ns)", base.DEC),
	rt_nonce = ProtoField.uint64("mycelium.route.nonce", "Attempt nonce", base.HEX),
	rt_nonce = ProtoField.uint32("mycelium.route.nonce", "Nonce", base.HEX),
	rt_found = ProtoField.bool("mycelium.route.found", "Found"),
	rt_hop = ProtoField.uint8("mycelium.route.hop", "Hop", base.DEC),
	rt_final = ProtoField.bool("mycelium.route.final", "Final"),
	rt_link = ProtoField.string("mycelium.route.link", "Link"),
	rt_tree = ProtoField.uint8("mycelium.route.tree", "Tree", base.DEC),
	rt_ts = ProtoField.uint8("mycelium.route.tree_state", "Tree state", base.DEC),
	rt_name = ProtoField.string("mycelium.route.name", "Name"),
	rt_status = ProtoField.uint8("mycelium.route.status", "Status", base.DEC, { [0] = "stored", [1] = "held for another node" }),
	rt_count = ProtoField.uint8("mycelium.route.count", "Count", base.DEC),
	rt_sig = ProtoField.bytes("mycelium.route.signature", "Signature"),

	sm_type = ProtoField.uint8("mycelium.stream.type", "Stream message", base.HEX, STREAM_TYPES),
	sm_id = ProtoField.uint64("mycelium.stream.id", "Stream", base.HEX),
	sm_app = ProtoField.bytes("mycelium.stream.app_id", "app_id"),
	sm_size = ProtoField.uint64("mycelium.stream.size", "Size", base.DEC),
	sm_chunk = ProtoField.uint32("mycelium.stream.chunk", "Chunk size", base.DEC),
	sm_sha = ProtoField.bytes("mycelium.stream.sha256", "SHA-256"),
	sm_sender = ProtoField.bytes("mycelium.stream.sender", "Sender node_id"),
	sm_index = ProtoField.uint32("mycelium.stream.index", "Chunk index", base.DEC),
	sm_code = ProtoField.uint8("mycelium.stream.code", "Result", base.DEC, ERROR_CODES),

	sg_app = ProtoField.bytes("mycelium.segment.app_id", "app_id"),
	sg_stream = ProtoField.uint32("mycelium.segment.stream_id", "Stream id", base.HEX),
	sg_offset = ProtoField.uint64("mycelium.segment.offset", "Offset", base.DEC),
	sg_total = ProtoField.uint64("mycelium.segment.total", "Total", base.DEC),
	sg_flags = ProtoField.uint8("mycelium.segment.flags", "Flags", base.HEX),
	sg_last = ProtoField.bool("mycelium.segment.last", "Last", 8, nil, 0x01),
	sg_zero = ProtoField.bool("mycelium.segment.first_confirmed", "Offset 0 confirmed", 8, nil, 0x02),
	sg_digest = ProtoField.bytes("mycelium.segment.digest", "Digest"),
	data = ProtoField.bytes("mycelium.data", "Data"),

	ph_flags = ProtoField.uint8("mycelium.path.flags", "Path flags", base.HEX),
	ph_f_origin = ProtoField.bool("mycelium.path.flags.origin", "Origin list follows", 8, nil, 0x01),
	ph_f_nonce = ProtoField.bool("mycelium.path.flags.nonce", "Nonce follows", 8, nil, 0x02),
	ph_nonce = ProtoField.uint64("mycelium.path.nonce", "Attempt nonce", base.HEX),
	ph_f_dst = ProtoField.bool("mycelium.path.flags.dst_tag", "Destination tag follows", 8, nil, 0x04),
	ph_dst_tag = ProtoField.bytes("mycelium.path.dst_tag", "Destination tag (node_id's first 8 bytes)"),
	ph_flag_names = ProtoField.string("mycelium.path.flag_names", "Path flag names"),
	ph_phase = ProtoField.uint8("mycelium.path.phase", "Phase", base.DEC),
	ph_bound = ProtoField.uint64("mycelium.path.bound", "Bound", base.DEC),
	ph_dst_count = ProtoField.uint8("mycelium.path.dst_count", "Destination addresses", base.DEC),
	ph_src_count = ProtoField.uint8("mycelium.path.src_count", "Origin addresses", base.DEC),
	ph_ts = ProtoField.uint8("mycelium.path.tree_state", "Tree state", base.DEC),
	ph_tree = ProtoField.uint8("mycelium.path.tree", "Tree", base.DEC),
	ph_len = ProtoField.uint8("mycelium.path.addr_len", "Address length", base.DEC),
	ph_addr = ProtoField.bytes("mycelium.path.address", "Address"),
	ph_coords = ProtoField.string("mycelium.path.coords", "Coordinates"),
	ph_dst = ProtoField.string("mycelium.path.dst", "Destination"),
	ph_src = ProtoField.string("mycelium.path.src", "Origin"),
}
local pfields = {}
for _, f in pairs(F) do pfields[#pfields + 1] = f end
p.fields = pfields

local E = {
	checksum = ProtoExpert.new("mycelium.checksum.bad", "Bad checksum", expert.group.CHECKSUM, expert.severity.ERROR),
	hash = ProtoExpert.new("mycelium.package.hash.bad", "Bad Package hash", expert.group.CHECKSUM, expert.severity.ERROR),
	schema = ProtoExpert.new("mycelium.schema.unknown", "Unknown schema", expert.group.MALFORMED, expert.severity.ERROR),
	short = ProtoExpert.new("mycelium.short", "Packet shorter than its schema's header", expert.group.MALFORMED, expert.severity.ERROR),
	long = ProtoExpert.new("mycelium.long", "Body longer than the schema's maximum", expert.group.MALFORMED, expert.severity.ERROR),
	version = ProtoExpert.new("mycelium.version.unknown", "Version above 0", expert.group.PROTOCOL, expert.severity.WARN),
	message = ProtoExpert.new("mycelium.message.malformed", "Message does not parse", expert.group.MALFORMED, expert.severity.WARN),
	partial = ProtoExpert.new("mycelium.sequence.partial", "Chunk of a sequence", expert.group.REASSEMBLE, expert.severity.CHAT),
}
p.experts = { E.checksum, E.hash, E.schema, E.short, E.long, E.version, E.message, E.partial }

local EF = {
	random = ProtoField.bytes("mycelium_espnow.random", "Random"),
	elements = ProtoField.uint8("mycelium_espnow.elements", "Vendor elements", base.DEC),
	version = ProtoField.uint8("mycelium_espnow.version", "ESP-NOW version", base.DEC),
	length = ProtoField.uint16("mycelium_espnow.length", "Payload length", base.DEC),
}
pe.fields = { EF.random, EF.elements, EF.version, EF.length }
local EE = {
	bad = ProtoExpert.new("mycelium_espnow.bad", "Not a well-formed ESP-NOW element chain", expert.group.MALFORMED, expert.severity.ERROR),
}
pe.experts = { EE.bad }

p.prefs.udp_port = Pref.uint("UDP port", 4242, "The mesh's UDP port (docs/links-udp-ble.md)")

---------------------------------------------------------------------------
-- Messages inside Packages. Each takes a TvbRange of the blob and a tree;
-- it returns a short summary for the Info column.

-- need reports whether r holds n more bytes from off, flagging it when not.
local function need(t, r, off, n)
	if r:len() < off + n then
		t:add_proto_expert_info(E.message, string.format("ends at %d bytes, %d needed", r:len(), off + n))
		return false
	end
	return true
end

local function addAddr(t, fa, fc, r)
	t:add(fa, r)
	local c = coords(r:raw())
	local it = t:add(fc, r, c)
	if c == "" then it:append_text("(the root)") end
end

local function dissectBeacon(r, t)
	local bt = t:add(p, r, "Beacon message")
	if not need(bt, r, 0, 33) then return "beacon (short)" end
	local op = r(0, 1):uint()
	bt:add(F.bc_op, r(0, 1))
	bt:add(F.bc_node, r(1, 32))
	local n = 0
	local off = 33
	while off + 16 <= r:len() do
		local a = r(off, 16)
		bt:add(F.bc_app, a)
		local name = APPS[tohex(a:raw())]
		if name then bt:add(F.bc_app_name, a, name) end
		off, n = off + 16, n + 1
	end
	if off ~= r:len() then bt:add_proto_expert_info(E.message, "trailing bytes after the app_ids") end
	return string.format("%s, %d apps", BEACON_OPS[op] or string.format("op 0x%02x", op), n)
end

local CLAIM, CERT = 113, 97

local function dissectClaim(r, off, t)
	local ct = t:add(p, r(off, CLAIM), "Claim")
	ct:add(F.tr_tree, r(off, 1))
	ct:add(F.tr_root, r(off + 1, 32))
	ct:add(F.tr_term, r(off + 33, 8))
	ct:add(F.tr_time, r(off + 41, 8))
	ct:add(F.tr_sig, r(off + 49, 64))
	return r(off, 1):uint()
end

local function dissectCert(r, off, t, i)
	local ct = t:add(p, r(off, CERT), string.format("Certificate %d", i))
	ct:add(F.tr_child, r(off, 32))
	ct:add(F.tr_index, r(off + 32, 1))
	ct:add(F.tr_sig, r(off + 33, 64))
	return r(off + 32, 1):uint()
end

-- dissectChain decodes claim ‖ count ‖ count × certificate and returns the
-- tree and the address the chain gives.
local function dissectChain(r, off, t)
	if not need(t, r, off, CLAIM + 1) then return nil end
	local tree = dissectClaim(r, off, t)
	local n = r(off + CLAIM, 1):uint()
	t:add(F.tr_count, r(off + CLAIM, 1))
	off = off + CLAIM + 1
	if not need(t, r, off, n * CERT) then return tree end
	local idx = {}
	for i = 1, n do
		idx[i] = tostring(dissectCert(r, off, t, i))
		off = off + CERT
	end
	-- The address the chain gives (the root's is empty).
	t:add(F.tr_addr, r(off - n * CERT - 1, n * CERT + 1), table.concat(idx, ","))
	if off ~= r:len() then t:add_proto_expert_info(E.message, "trailing bytes after the chain") end
	return tree
end

local function dissectTree(r, t)
	local tt = t:add(p, r, "Tree message")
	if not need(tt, r, 0, 1) then return "tree (empty)" end
	local typ = r(0, 1):uint()
	tt:add(F.tr_type, r(0, 1))
	local name = TREE_TYPES[typ] or string.format("type 0x%02x", typ)
	local tree
	if typ == 0x00 then
		if not need(tt, r, 1, CLAIM) then return "tree " .. name end
		tree = dissectClaim(r, 1, tt)
		if r:len() >= 1 + CLAIM + 1 then tt:add(F.tr_hops, r(1 + CLAIM, 1)) end
	elseif typ == 0x0f then
		tree = dissectChain(r, 1, tt)
	elseif typ == 0x0e then
		if not need(tt, r, 1, 3) then return "tree " .. name end
		tt:add(F.tr_tree, r(1, 1)); tt:add(F.tr_ts, r(2, 1)); tt:add(F.tr_want, r(3, 1))
		tree = r(1, 1):uint()
	elseif typ == 0x0c then
		if not need(tt, r, 1, 34) then return "tree " .. name end
		tt:add(F.tr_tree, r(1, 1)); tt:add(F.tr_ts, r(2, 1)); tt:add(F.tr_key, r(3, 32))
		tree = r(1, 1):uint()
		local off, i = 35, 1
		while off + CERT <= r:len() do
			dissectCert(r, off, tt, i)
			off, i = off + CERT, i + 1
		end
		if off ~= r:len() then tt:add_proto_expert_info(E.message, "trailing bytes after the certificates") end
	elseif typ == 0xf0 then
		if not need(tt, r, 1, 34) then return "tree " .. name end
		tt:add(F.tr_tree, r(1, 1)); tt:add(F.tr_ts, r(2, 1)); tt:add(F.tr_key, r(3, 32))
		tree = r(1, 1):uint()
		-- [ours] a flags byte may follow (certificate answers).
		if r:len() >= 36 then tt:add(F.tr_flags, r(35, 1)) end
		if r:len() > 36 then tt:add_proto_expert_info(E.message, "trailing bytes after the request") end
	elseif typ == 0x0d then
		if not need(tt, r, 1, 34 + CERT + 1) then return "tree " .. name end
		tt:add(F.tr_tree, r(1, 1)); tt:add(F.tr_ts, r(2, 1)); tt:add(F.tr_key, r(3, 32))
		dissectCert(r, 35, tt, 1)
		tt:add(F.tr_depth, r(35 + CERT, 1))
		tree = r(1, 1):uint()
	elseif typ == 0xff then
		if not need(tt, r, 1, 1) then return "tree " .. name end
		tt:add(F.tr_status, r(1, 1))
		if r(1, 1):uint() == 6 then
			-- [ours] a certificate answer: tree, tree_state, the asker's certificate.
			if not need(tt, r, 2, 2 + CERT) then return "tree " .. name end
			tt:add(F.tr_tree, r(2, 1)); tt:add(F.tr_ts, r(3, 1))
			dissectCert(r, 4, tt, 1)
			tree = r(2, 1):uint()
			if r:len() > 4 + CERT then tt:add_proto_expert_info(E.message, "trailing bytes after the certificate") end
		elseif r:len() > 2 then
			tree = dissectChain(r, 2, tt)
		end
	end
	if tree then return string.format("tree %s (tree %d)", name, tree) end
	return "tree " .. name
end

-- dissectRecord decodes an address record at off; returns its end.
local function dissectRecord(r, off, t)
	if not need(t, r, off, 32 + 1 + 8 + 1) then return r:len() end
	local rt = t:add(p, r(off), "Address record")
	rt:add(F.rt_node, r(off, 32))
	local flags = r(off + 32, 1):uint()
	off = off + 33
	if flags == 1 then
		if not need(rt, r, off, 32) then return r:len() end
		rt:add(F.rt_signer, r(off, 32))
		off = off + 32
	end
	if not need(rt, r, off, 9) then return r:len() end
	rt:add(F.rt_time, r(off, 8))
	local n = r(off + 8, 1):uint()
	rt:add(F.rt_count, r(off + 8, 1))
	off = off + 9
	for _ = 1, n do
		if not need(rt, r, off, 3) then return r:len() end
		local l = r(off + 2, 1):uint()
		if l > 16 or not need(rt, r, off + 3, l) then
			rt:add_proto_expert_info(E.message, "bad address length")
			return r:len()
		end
		local at = rt:add(p, r(off, 3 + l), "Address")
		at:add(F.rt_tree, r(off, 1)); at:add(F.rt_ts, r(off + 1, 1))
		if l > 0 then
			at:add(F.rt_addr, r(off + 3, l))
			at:add(F.rt_coords, r(off + 3, l), coords(r(off + 3, l):raw() .. string.rep("\0", 16 - l)))
		end
		off = off + 3 + l
	end
	if not need(rt, r, off, 64) then return r:len() end
	rt:add(F.rt_sig, r(off, 64))
	return off + 64
end

local function dissectNameRecord(r, off, t)
	if not need(t, r, off, 1) then return end
	local n = r(off, 1):uint()
	if not need(t, r, off, 1 + n + 32 + 8 + 64) then return end
	local nt = t:add(p, r(off, 1 + n + 104), "Name record")
	nt:add(F.rt_name, r(off + 1, n))
	nt:add(F.rt_node, r(off + 1 + n, 32))
	nt:add(F.rt_time, r(off + 1 + n + 32, 8))
	nt:add(F.rt_sig, r(off + 1 + n + 40, 64))
	return r(off + 1, n):string()
end

local function dissectRoute(r, t)
	local rt = t:add(p, r, "Route message")
	if not need(rt, r, 0, 1) then return "route (empty)" end
	local typ = r(0, 1):uint()
	rt:add(F.rt_type, r(0, 1))
	local name = "route " .. (ROUTE_TYPES[typ] or string.format("type 0x%02x", typ))
	if typ == 0x01 then
		if need(rt, r, 1, 16) then rt:add(F.rt_hash, r(1, 16)) end
	elseif typ == 0x03 then
		if need(rt, r, 1, 88) then
			rt:add(F.rt_hash, r(1, 16)); rt:add(F.rt_time, r(17, 8)); rt:add(F.rt_sig, r(25, 64))
		end
	elseif typ == 0x05 then
		if need(rt, r, 1, 96) then
			rt:add(F.rt_hash, r(1, 16)); rt:add(F.rt_nonce, r(17, 8)); rt:add(F.rt_time, r(25, 8)); rt:add(F.rt_sig, r(33, 64))
		end
	elseif typ == 0x02 or typ == 0x04 then
		if need(rt, r, 1, 33) then
			rt:add(F.rt_code, r(1, 1)); rt:add(F.rt_hash, r(2, 16))
			addAddr(rt, F.rt_addr, F.rt_coords, r(18, 16))
			name = name .. ": " .. (ERROR_CODES[r(1, 1):uint()] or "code " .. r(1, 1):uint())
		end
		if typ == 0x04 and need(rt, r, 34, 104) then
			rt:add(F.rt_signer, r(34, 32)); rt:add(F.rt_time, r(66, 8)); rt:add(F.rt_sig, r(74, 64))
		end
	elseif typ == 0x42 or typ == 0x43 then
		if need(rt, r, 1, 106) then
			rt:add(F.rt_tree, r(1, 1)); rt:add(F.rt_ts, r(2, 1)); rt:add(F.rt_signer, r(3, 32))
			rt:add(F.rt_time, r(35, 8)); rt:add(F.rt_sig, r(43, 64))
		end
	elseif typ == 0x10 then
		dissectRecord(r, 1, rt)
	elseif typ == 0x13 then
		if need(rt, r, 1, 40) then rt:add(F.rt_node, r(1, 32)); rt:add(F.rt_time, r(33, 8)) end
	elseif typ == 0x11 then
		if need(rt, r, 1, 36) then rt:add(F.rt_node, r(1, 32)); rt:add(F.rt_nonce, r(33, 4)) end
	elseif typ == 0x12 or typ == 0x17 then
		if need(rt, r, 1, 5) then
			rt:add(F.rt_nonce, r(1, 4)); rt:add(F.rt_found, r(5, 1))
			if r(5, 1):uint() ~= 0 then
				if typ == 0x12 then dissectRecord(r, 6, rt) else dissectNameRecord(r, 6, rt) end
			end
		end
	elseif typ == 0x20 then
		if need(rt, r, 1, 4) then rt:add(F.rt_nonce, r(1, 4)) end
	elseif typ == 0x21 then
		if need(rt, r, 1, 4 + 1 + 16 + 1 + 32) then
			rt:add(F.rt_nonce, r(1, 4)); rt:add(F.rt_hop, r(5, 1))
			addAddr(rt, F.rt_addr, F.rt_coords, r(6, 16))
			rt:add(F.rt_final, r(22, 1)); rt:add(F.rt_node, r(23, 32))
			if r:len() > 55 then rt:add(F.rt_link, r(55), r(55):string()) end
			name = name .. string.format(" (hop %d)", r(5, 1):uint())
		end
	elseif typ == 0x14 or typ == 0x18 then
		local n = dissectNameRecord(r, 1, rt)
		if n then name = name .. " " .. n end
	elseif typ == 0x15 then
		if need(rt, r, 1, 41) then rt:add(F.rt_node, r(1, 32)); rt:add(F.rt_time, r(33, 8)); rt:add(F.rt_status, r(41, 1)) end
	elseif typ == 0x16 then
		if need(rt, r, 1, 4) then
			rt:add(F.rt_nonce, r(1, 4))
			if r:len() > 5 then rt:add(F.rt_name, r(5), r(5):string()) end
		end
	elseif typ == 0x31 then
		if need(rt, r, 1, 1) then
			local n = r(1, 1):uint()
			rt:add(F.rt_count, r(1, 1))
			if need(rt, r, 2, n * 18) then
				for i = 0, n - 1 do
					local o = 2 + i * 18
					rt:add(F.rt_tree, r(o, 1)); rt:add(F.rt_ts, r(o + 1, 1))
					addAddr(rt, F.rt_addr, F.rt_coords, r(o + 2, 16))
				end
			end
		end
	elseif typ == 0x40 or typ == 0x41 then
		if need(rt, r, 1, 2) then rt:add(F.rt_tree, r(1, 1)); rt:add(F.rt_ts, r(2, 1)) end
	end
	return name
end

local function dissectStream(r, t)
	local st = t:add(p, r, "Stream message")
	if not need(st, r, 0, 9) then return "stream (short)" end
	local typ = r(0, 1):uint()
	st:add(F.sm_type, r(0, 1)); st:add(F.sm_id, r(1, 8))
	if typ == 1 and need(st, r, 9, 16 + 8 + 4 + 32 + 32) then
		st:add(F.sm_app, r(9, 16)); st:add(F.sm_size, r(25, 8)); st:add(F.sm_chunk, r(33, 4))
		st:add(F.sm_sha, r(37, 32)); st:add(F.sm_sender, r(69, 32))
	elseif typ == 2 and need(st, r, 9, 4) then
		st:add(F.sm_index, r(9, 4))
		if r:len() > 13 then st:add(F.data, r(13)) end
	elseif typ == 3 and need(st, r, 9, 32) then
		st:add(F.sm_sender, r(9, 32))
	elseif typ == 4 and need(st, r, 9, 1) then
		st:add(F.sm_code, r(9, 1))
	end
	return "stream " .. (STREAM_TYPES[typ] or string.format("type 0x%02x", typ))
end

local function dissectSegment(r, t)
	local st = t:add(p, r, "Stream segment")
	if not need(st, r, 0, 37) then return "segment (short)" end
	st:add(F.sg_app, r(0, 16)); st:add(F.sg_stream, r(16, 4)); st:add(F.sg_offset, r(20, 8))
	st:add(F.sg_total, r(28, 8))
	local ft = st:add(F.sg_flags, r(36, 1))
	ft:add(F.sg_last, r(36, 1)); ft:add(F.sg_zero, r(36, 1))
	local off = 37
	if band(r(36, 1):uint(), 1) ~= 0 then
		if not need(st, r, off, 16) then return "segment" end
		st:add(F.sg_digest, r(off, 16))
		off = off + 16
	end
	if r:len() > off then st:add(F.data, r(off)) end
	return string.format("segment at %s", tostring(r(20, 8):uint64()))
end

-- dissectPath decodes a path header (route/path.go) and the Package it
-- carries (dissectPackage, declared below); depth bounds nesting.
local dissectPackage
local PATH_MAX_ADDRS = 16 -- tree.MaxTrees

-- dissectAddrList decodes count(1) ‖ count × (tree_state ‖ compact Long)
-- at off under t; it returns the end and "ts:coords" items, or nil when it
-- does not parse (flagged).
local function dissectAddrList(r, off, t, label, fcount, fitem)
	if not need(t, r, off, 1) then return nil end
	local n = r(off, 1):uint()
	local lt = t:add(p, r(off, 1), label)
	lt:add(fcount, r(off, 1))
	if n > PATH_MAX_ADDRS then
		lt:add_proto_expert_info(E.message, string.format("%d addresses, at most %d", n, PATH_MAX_ADDRS))
		return nil
	end
	local start, items = off, {}
	off = off + 1
	for i = 1, n do
		if not need(lt, r, off, 2) then return nil end
		local ts, l = r(off, 1):uint(), r(off + 1, 1):uint()
		if l > 64 or not need(lt, r, off + 2, l) then
			lt:add_proto_expert_info(E.message, string.format("compact address of %d bytes", l))
			return nil
		end
		if l > 0 and r(off + 1 + l, 1):uint() == 0 then
			lt:add_proto_expert_info(E.message, "compact address with a trailing zero byte")
			return nil
		end
		local raw = ""
		if l > 0 then raw = r(off + 2, l):raw() end
		local c = longCoords(raw)
		local at = lt:add(p, r(off, 2 + l), string.format("Address %d: tree %d, tree_state %d, %s", i, ts % 16, ts, c == "" and "(the root)" or c))
		at:add(F.ph_ts, r(off, 1))
		at:add(F.ph_tree, r(off, 1), ts % 16)
		at:add(F.ph_len, r(off + 1, 1))
		if l > 0 then at:add(F.ph_addr, r(off + 2, l)) end
		local ci = at:add(F.ph_coords, r(off + 1, 1 + l), c)
		if c == "" then ci:append_text("(the root)") end
		items[#items + 1] = ts .. ":" .. c
		off = off + 2 + l
	end
	lt:set_len(off - start)
	lt:add(fitem, r(start, off - start), table.concat(items, " "))
	return off, items
end

local function dissectPath(r, t, depth)
	local pt = t:add(p, r, "Path header")
	if not need(pt, r, 0, 11) then return "path (short)" end
	local flags = r(0, 1):uint()
	local fi = pt:add(F.ph_flags, r(0, 1))
	fi:add(F.ph_f_origin, r(0, 1))
	fi:add(F.ph_f_nonce, r(0, 1))
	fi:add(F.ph_f_dst, r(0, 1))
	local names = {}
	if band(flags, 0x01) ~= 0 then names[#names + 1] = "origin" end
	if band(flags, 0x02) ~= 0 then names[#names + 1] = "nonce" end
	if band(flags, 0x04) ~= 0 then names[#names + 1] = "dst_tag" end
	pt:add(F.ph_flag_names, r(0, 1), table.concat(names, ","))
	if band(flags, 0xf8) ~= 0 then
		fi:add_proto_expert_info(E.message, string.format("unknown path flags %#x", flags))
		return "path (bad flags)"
	end
	local phase = r(1, 1):uint()
	pt:add(F.ph_phase, r(1, 1))
	pt:add(F.ph_bound, r(2, 8))
	local off, dst = dissectAddrList(r, 10, pt, "Destination addresses", F.ph_dst_count, F.ph_dst)
	if not off then return "path (malformed)" end
	if #dst == 0 then
		pt:add_proto_expert_info(E.message, "no destination address")
		return "path (malformed)"
	end
	if phase > #dst then
		pt:add_proto_expert_info(E.message, string.format("phase %d of %d addresses", phase, #dst))
		return "path (malformed)"
	end
	if band(flags, 0x01) ~= 0 then
		local src
		off, src = dissectAddrList(r, off, pt, "Origin addresses", F.ph_src_count, F.ph_src)
		if not off then return "path (malformed)" end
		if #src == 0 then
			pt:add_proto_expert_info(E.message, "an empty origin list")
			return "path (malformed)"
		end
	end
	if band(flags, 0x02) ~= 0 then
		if not need(pt, r, off, 8) then return "path (malformed)" end
		pt:add(F.ph_nonce, r(off, 8))
		off = off + 8
	end
	if band(flags, 0x04) ~= 0 then
		if not need(pt, r, off, 8) then return "path (malformed)" end
		pt:add(F.ph_dst_tag, r(off, 8))
		off = off + 8
	end
	if depth >= 4 then
		pt:add_proto_expert_info(E.message, "path headers nested too deep")
		return "path (nested)"
	end
	if r:len() <= off then
		pt:add_proto_expert_info(E.message, "no carried Package")
		return "path (no Package)"
	end
	local inner = r(off):tvb()
	return string.format("path phase %d to %s: %s", phase, dst[1], dissectPackage(inner, pt, depth + 1))
end

-- dissectPackage decodes a whole Package: app_id, hash (checked), blob.
dissectPackage = function(tvb, t, depth)
	depth = depth or 0
	local pt = t:add(p, tvb(), "Package")
	if tvb:len() < 32 then
		pt:add_proto_expert_info(E.message, "a Package is at least 32 bytes")
		return "short Package"
	end
	local app = tohex(tvb(0, 16):raw())
	pt:add(F.pkg_app, tvb(0, 16))
	local appName = APPS[app]
	if appName then pt:add(F.pkg_app_name, tvb(0, 16), appName) end
	local blob = ""
	if tvb:len() > 32 then blob = tvb(32):raw() end
	local ok = sha256(blob):sub(1, 32) == tohex(tvb(16, 16):raw())
	pt:add(F.pkg_hash, tvb(16, 16))
	local hi = pt:add(F.pkg_hash_ok, tvb(16, 16), ok)
	if not ok then hi:add_proto_expert_info(E.hash, "Package hash does not match its blob") end
	pt:add(F.pkg_len, #blob)
	local summary = appName or ("app " .. app:sub(1, 8))
	if tvb:len() > 32 then
		local r = tvb(32)
		pt:add(F.pkg_blob, r)
		if app == APP_BEACON then
			summary = dissectBeacon(r, pt)
		elseif app == APP_TREE then
			summary = dissectTree(r, pt)
		elseif app == APP_ROUTE then
			summary = dissectRoute(r, pt)
		elseif app == APP_STREAM then
			summary = dissectStream(r, pt)
		elseif app == APP_SEGMENT then
			summary = dissectSegment(r, pt)
		elseif app == APP_PATH then
			summary = dissectPath(r, pt, depth)
		end
	end
	if not ok then summary = summary .. " [BAD HASH]" end
	return summary
end

---------------------------------------------------------------------------
-- Reassembly. Chunks are kept per (sender, receiver, schema, seq_id,
-- seq_size) in the first pass; the frame that completes a sequence keeps
-- the Package for later passes.

local pending, done = {}, {}

function p.init()
	pending, done = {}, {}
end

-- reassemble adds chunk pid of the sequence key; it returns the whole
-- Package when this frame completed it.
local function reassemble(pinfo, key, pid, last, chunk)
	if pinfo.visited then return done[pinfo.number] end
	local e = pending[key]
	if e == nil or (e.chunks[pid] ~= nil and e.chunks[pid] ~= chunk) then
		-- A chunk that differs from the one held at its index starts a new
		-- sequence (a seq_id reused).
		e = { chunks = {}, n = 0 }
		pending[key] = e
	end
	if e.chunks[pid] == nil then
		e.chunks[pid] = chunk
		e.n = e.n + 1
	end
	if e.n == last + 1 then
		local parts = {}
		for i = 0, last do parts[#parts + 1] = e.chunks[i] end
		pending[key] = nil
		local whole = table.concat(parts)
		done[pinfo.number] = whole
		return whole
	end
	return nil
end

---------------------------------------------------------------------------
-- The packet.

local function dissectPacket(tvb, pinfo, tree, addressed)
	pinfo.cols.protocol = "Mycelium"
	local t = tree:add(p, tvb())
	local n = tvb:len()
	if n < 4 then
		t:add_proto_expert_info(E.short, string.format("%d bytes", n))
		pinfo.cols.info = "Mycelium: too short"
		return n
	end
	local version = tvb(0, 1):uint()
	local vi = t:add(F.version, tvb(0, 1))
	if version > 0 then vi:add_proto_expert_info(E.version) end
	t:add(F.reserved, tvb(1, 1))
	if tvb(1, 1):uint() == 1 and n >= 16 then
		-- [ours] A hop-authenticated frame between two proven neighbours
		-- (l2-seq/hop): the packet, then counter (4) and tag (8).
		t:add(F.hop_counter, tvb(n - 12, 4))
		t:add(F.hop_tag, tvb(n - 8, 8))
		tvb = tvb(0, n - 12):tvb()
		n = n - 12
	end
	local sid = tvb(2, 1):uint()
	local si = t:add(F.schema, tvb(2, 1))
	local flags = tvb(3, 1):uint()
	local ft = t:add(F.flags, tvb(3, 1))
	ft:add(F.f_error, tvb(3, 1)); ft:add(F.f_throttle, tvb(3, 1)); ft:add(F.f_encoded, tvb(3, 1))
	ft:add(F.f_res1, tvb(3, 1)); ft:add(F.f_res2, tvb(3, 1)); ft:add(F.f_mode, tvb(3, 1))
	local names = {}
	local isError, enc = band(flags, 0x80) ~= 0, math.floor(band(flags, 0x38) / 8)
	if isError then names[#names + 1] = "error" end
	if band(flags, 0x40) ~= 0 then names[#names + 1] = "throttle" end
	if enc >= 1 and enc <= 5 then names[#names + 1] = ENCODED[enc] end
	if band(flags, 0x01) ~= 0 then names[#names + 1] = "mode" end
	local flagNames = table.concat(names, ",")
	t:add(F.flag_names, tvb(3, 1), flagNames)
	if flagNames ~= "" then ft:append_text(" (" .. flagNames .. ")") end

	local layout, family, limit = schemaOf(sid)
	if layout == nil then
		si:add_proto_expert_info(E.schema, string.format("schema %d is not 0-10, 20-30 or 40-50", sid))
		pinfo.cols.info = string.format("Mycelium: unknown schema %d", sid)
		return n
	end
	t:add(F.family, tvb(2, 1), family)
	local pidSize, sidSize, sszSize, ttlSize, ckSize, routeSize = unpack(layout)
	local hdr = 4 + pidSize + sidSize + sszSize + ttlSize + ckSize + routeSize
	if n < hdr then
		t:add_proto_expert_info(E.short, string.format("schema %d needs %d bytes of header, the packet has %d", sid, hdr, n))
		pinfo.cols.info = string.format("Mycelium: schema %d, truncated", sid)
		return n
	end
	if n > limit then
		t:add_proto_expert_info(E.long, string.format("%d bytes, schema %d carries at most %d", n, sid, limit))
	end
	local off = 4
	local pid = tvb(off, pidSize):uint()
	t:add(F.packet_id, tvb(off, pidSize))
	off = off + pidSize
	local seqID, seqSize
	if sidSize > 0 then
		seqID = tvb(off, 1):uint()
		t:add(F.seq_id, tvb(off, 1))
		off = off + 1
		seqSize = tvb(off, sszSize):uint()
		t:add(F.seq_size, tvb(off, sszSize))
		off = off + sszSize
	end
	if ttlSize > 0 then
		t:add(F.ttl, tvb(off, 1))
		off = off + 1
	end
	local ckOff
	if ckSize > 0 then
		ckOff = off
		t:add(F.checksum, tvb(off, 4))
		off = off + 4
	end
	local toS
	if routeSize > 0 then
		t:add(F.tree_state, tvb(off, 1))
		addAddr(t, F.to_addr, F.to_coords, tvb(off + 1, 16))
		addAddr(t, F.from_addr, F.from_coords, tvb(off + 17, 16))
		toS = coords(tvb(off + 1, 16):raw())
		off = off + 33
	end
	local body = ""
	if n > off then body = tvb(off):raw() end
	t:add(F.body_len, n - off)
	if n > off then t:add(F.body, tvb(off)) end
	local ckOK = true
	if ckOff then
		ckOK = crc32(body) == tvb(ckOff, 4):uint()
		local ci = t:add(F.checksum_ok, tvb(ckOff, 4), ckOK)
		if not ckOK then ci:add_proto_expert_info(E.checksum, string.format("crc32 of the body is %08x", crc32(body))) end
	end

	local info = { string.format("schema %d", sid) }
	if flagNames ~= "" then info[#info + 1] = "[" .. flagNames .. "]" end
	info[#info + 1] = "pid " .. pid
	if seqID then info[#info + 1] = string.format("seq %d/%d", seqID, seqSize) end
	if toS == "" then info[#info + 1] = "to the root" elseif toS then info[#info + 1] = "to (" .. toS .. ")" end
	if not ckOK then info[#info + 1] = "[BAD CHECKSUM]" end

	-- What the body is: an answer (ack, error, status), a control frame
	-- (rtx, rns, nia, a probe), or data.
	local what
	if enc == 2 then
		if isError and #body >= 1 then
			t:add(F.err_code, tvb(off, 1))
			what = "error: " .. (ERROR_CODES[body:byte(1)] or "code " .. body:byte(1))
		elseif #body >= 5 then
			t:add(F.st_state, tvb(off, 1)); t:add(F.st_hi, tvb(off + 1, 2)); t:add(F.st_base, tvb(off + 3, 2))
			if #body > 5 then t:add(F.st_bitmap, tvb(off + 5)) end
			what = "status: " .. (STATUS_STATES[body:byte(1)] or "state " .. body:byte(1))
		else
			what = "ack"
		end
	elseif enc == 3 or enc == 4 or enc == 5 then
		what = ENCODED[enc]
	elseif #body == 0 then
		if enc == 1 then what = "probe" else what = "empty" end
	elseif isError and #body < 32 then
		t:add(F.err_code, tvb(off, 1))
		what = "error: " .. (ERROR_CODES[body:byte(1)] or "code " .. body:byte(1))
	elseif not ckOK then
		what = "data (not decoded: bad checksum)"
	elseif seqID == nil or (seqSize == 0 and pid == 0) then
		-- A single packet, or a sequence of one: the body is the Package.
		what = dissectPackage(tvb(off):tvb(), t)
	elseif pid > seqSize then
		t:add_proto_expert_info(E.message, string.format("packet_id %d beyond seq_size %d", pid, seqSize))
		what = string.format("packet_id %d beyond the sequence", pid)
	elseif not addressed then
		t:add_proto_expert_info(E.partial, "not reassembled: this link type does not name the sender")
		what = string.format("chunk %d of %d", pid, seqSize + 1)
	else
		local key = table.concat({ tostring(pinfo.src), tostring(pinfo.dst), sid, seqID, seqSize }, "|")
		local whole = reassemble(pinfo, key, pid, seqSize, body)
		if whole then
			local rt = ByteArray.new(whole, true):tvb("Reassembled Package")
			what = dissectPackage(rt, t)
		else
			t:add(F.seq_chunk, tvb(off), string.format("chunk %d of %d", pid, seqSize + 1))
			what = string.format("chunk %d of %d", pid, seqSize + 1)
		end
	end
	info[#info + 1] = what
	pinfo.cols.info = "Mycelium " .. table.concat(info, " ")
	return n
end

function p.dissector(tvb, pinfo, tree)
	-- Under UDP the sender and receiver are in the columns; under USER0
	-- there are no addresses.
	local addressed = pinfo.src_port ~= 0
	return dissectPacket(tvb, pinfo, tree, addressed)
end

-- The ESP-NOW part of a vendor action frame, after the OUI: random (4),
-- then one vendor element (v1) or a chain (v2): id 0xdd, length, OUI,
-- type 4, version (bit 4: more elements follow), payload.
function pe.dissector(tvb, pinfo, tree)
	local t = tree:add(pe, tvb())
	local n = tvb:len()
	if n < 4 + 7 then
		t:add_proto_expert_info(EE.bad, "too short")
		return n
	end
	t:add(EF.random, tvb(0, 4))
	local off, parts, count = 4, {}, 0
	local version
	while true do
		if off + 7 > n or tvb(off, 1):uint() ~= 0xdd or tvb(off + 2, 3):uint() ~= 0x18fe34 or tvb(off + 5, 1):uint() ~= 4 then
			t:add_proto_expert_info(EE.bad, string.format("element %d", count + 1))
			return n
		end
		local el = tvb(off + 1, 1):uint()
		if el < 5 or off + 2 + el > n then
			t:add_proto_expert_info(EE.bad, "element length")
			return n
		end
		local v = tvb(off + 6, 1):uint()
		version = version or band(v, 0x0f)
		if el > 5 then parts[#parts + 1] = tvb(off + 7, el - 5):raw() end
		count = count + 1
		off = off + 2 + el
		if band(v, 0x10) == 0 then break end
	end
	t:add(EF.elements, count)
	t:add(EF.version, version)
	local payload = table.concat(parts)
	t:add(EF.length, #payload)
	local ptvb
	if count == 1 then
		ptvb = tvb(11, #payload):tvb()
	else
		ptvb = ByteArray.new(payload, true):tvb("ESP-NOW v2 payload")
	end
	dissectPacket(ptvb, pinfo, tree, true)
	return n
end

DissectorTable.get("wlan.action.vendor_specific"):add(0x18fe34, pe)
DissectorTable.get("wtap_encap"):add(wtap_encaps.USER0, p)

local udpPort = 0
local function registerUDP()
	local tbl = DissectorTable.get("udp.port")
	if udpPort ~= 0 then tbl:remove(udpPort, p) end
	udpPort = p.prefs.udp_port
	if udpPort ~= 0 then tbl:add(udpPort, p) end
end
function p.prefs_changed() registerUDP() end
registerUDP()
