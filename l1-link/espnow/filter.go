package espnow

import "golang.org/x/net/bpf"

// packetOutgoing is PACKET_OUTGOING, the packet type of frames this host
// transmits (linux/if_packet.h), spelled out so the package builds on every
// OS.
const packetOutgoing = 4

// snapLen is how many bytes of an accepted frame the kernel keeps.
const snapLen = 0x40000

// Filter returns the classic BPF program the link attaches to its socket so
// that the kernel hands up only ESP-NOW frames: on a monitor interface the
// socket otherwise sees every frame on the channel (beacons, data, other
// networks' traffic), and copying all of them to user space to discard them
// there costs CPU for nothing. It also rejects the frames the host itself
// transmits (packet type PACKET_OUTGOING), so a link never hears its own
// frames.
//
// The program reads the radiotap length (a little-endian u16 at offset 2;
// BPF loads are big-endian, so it combines the two bytes) into X, then
// checks, relative to X: frame control 0xd0 (action), a 4-byte HT Control
// field when the Order bit is set, category 127 and the Espressif OUI, the
// vendor element id 0xdd, OUI and type 4; or the same one byte earlier for
// drivers that strip the category byte. Parse still checks every frame
// fully: the filter only keeps the obvious non-ESP-NOW traffic out.
func Filter() []bpf.Instruction { return filter(true) }

// filter builds the program; skipOutgoing prepends the packet-type check,
// which the pure-Go VM used in tests cannot run.
func filter(skipOutgoing bool) []bpf.Instruction {
	core := []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 3, Size: 1},
		/* 1 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 8},
		/* 2 */ bpf.TAX{},
		/* 3 */ bpf.LoadAbsolute{Off: 2, Size: 1},
		/* 4 */ bpf.ALUOpX{Op: bpf.ALUOpOr},
		/* 5 */ bpf.TAX{}, // X = radiotap length
		/* 6 */ bpf.LoadIndirect{Off: 0, Size: 1},
		/* 7 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: fcAction, SkipFalse: 18}, // -> reject
		/* 8 */ bpf.LoadIndirect{Off: 1, Size: 1},
		/* 9 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: fcFlagOrder, SkipFalse: 3}, // -> 13
		/* 10 */ bpf.TXA{},
		/* 11 */ bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 4},
		/* 12 */ bpf.TAX{}, // X = start of the body minus HeaderLen
		/* 13 */ bpf.LoadIndirect{Off: HeaderLen, Size: 4},
		/* 14 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x7f18fe34, SkipFalse: 4}, // -> 19
		/* 15 */ bpf.LoadIndirect{Off: HeaderLen + 8, Size: 1},
		/* 16 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: ElementVendor, SkipFalse: 9}, // -> reject
		/* 17 */ bpf.LoadIndirect{Off: HeaderLen + 10, Size: 4},
		/* 18 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x18fe3404, SkipTrue: 6, SkipFalse: 7}, // -> accept, reject
		// Category stripped: the OUI comes first.
		/* 19 */ bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xffffff00},
		/* 20 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x18fe3400, SkipFalse: 5}, // -> reject
		/* 21 */ bpf.LoadIndirect{Off: HeaderLen + 7, Size: 1},
		/* 22 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: ElementVendor, SkipFalse: 3}, // -> reject
		/* 23 */ bpf.LoadIndirect{Off: HeaderLen + 9, Size: 4},
		/* 24 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x18fe3404, SkipFalse: 1}, // -> accept, reject
		/* 25 */ bpf.RetConstant{Val: snapLen}, // accept
		/* 26 */ bpf.RetConstant{Val: 0}, // reject
	}
	if !skipOutgoing {
		return core
	}
	return append([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipTrue: uint8(len(core) - 1)}, // -> reject (the last instruction)
	}, core...)
}
