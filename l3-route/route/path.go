package route

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// Path headers [ours]. A packet header names one tree and holds 16-byte
// addresses; a Package that needs more — a destination deeper than the
// wire's 32 nibbles, or routing by all the trees at once — travels inside
// a path header, as the blob of a PathApp Package:
//
//	flags(1) ‖ phase(1) ‖ bound(8) ‖ n(1) ‖ n × (tree_state ‖ compact Long)
//	[‖ m(1) ‖ m × (tree_state ‖ compact Long)] [‖ nonce(8)] [‖ dst tag(8)]
//	‖ the carried Package
//
// The n addresses are the destination's, one per tree (its name record's);
// the m (flag 0x01) are the origin's, for what travels back (receipts,
// errors, replies). The nonce (flag 0x02) is the origin's, drawn afresh
// for each attempt of a send to a destination that signs its receipts: the
// destination signs it into its receipt (msgReceiptNonce, signed.go), so
// that a receipt recorded for an earlier send of the same Package cannot
// confirm this one. The dst tag (flag 0x04) is the first 8 bytes of the
// destination's node_id, written by an origin that knows it (a send to a
// node, a trace): a node takes the Package as its own only if the tag is
// its own (forwardPath). An address names a place, not a node: a record
// older than the trees, or a term that reuses a tree_state (namesakes),
// can lead to a place another node holds now. Keyless boards, which parse path headers but sign
// nothing, are never sent one (their parser refuses flags it does not
// know). A relay ranks its neighbours by a potential computed
// from all the destination's addresses it shares an epoch with (see
// potential), forwards only to one whose potential is below both its own
// and the bound the previous hop wrote, and writes that neighbour's
// potential as the new bound: the bound strictly falls at every hop, so no
// Package can loop, whatever the relays know. Where none is below it (a
// dead relay broke every tree's way), the phase moves on: phase i routes by
// the i-th destination address alone, and each phase ranks below the last.
// The carried Package is the one its origin made: receipts, errors and
// duplicates name it by its own hash.

// PathApp is the application a path header travels as: ("Mycelium",
// "path", 1).
var PathApp = packet.NewAppID("Mycelium", "path", 1)

const (
	pathSrc   = 0x01 // the origin's addresses follow the destination's
	pathNonce = 0x02 // the origin's nonce follows the addresses
	pathDst   = 0x04 // the destination's node_id tag follows (after the nonce)

	// dstTagSize is the bytes of the destination's node_id a path header
	// carries: enough that no two nodes of a mesh share them by chance
	// (2^-64 a pair), a quarter of the whole node_id's cost on every hop.
	dstTagSize = 8

	// maxPathAddrs bounds either list: one address per tree.
	maxPathAddrs = tree.MaxTrees
	// maxPathBytes is what a sender spends on the destination's addresses
	// in a path header: all six of a mesh of a thousand nodes (about ten
	// bytes each), the nearest two or three of a deep one.
	maxPathBytes = 96
	// noBound is the bound an origin writes: nothing ranks above it.
	noBound = math.MaxUint64
)

// pathHeader is a decoded path header.
type pathHeader struct {
	phase uint8
	bound uint64
	dst   []TreeAddr
	src   []TreeAddr
	// nonce is the origin's for this attempt (hasNonce: the header
	// carries one).
	nonce    uint64
	hasNonce bool
	// dstTag is the destination's node_id's first bytes (hasDstTag: the
	// header carries them): only that node takes the Package as its own.
	dstTag    [dstTagSize]byte
	hasDstTag bool
}

// dstTagOf is the tag a path header names node id by.
func dstTagOf(id identity.NodeID) (tag [dstTagSize]byte) {
	copy(tag[:], id[:])
	return tag
}

// setDst makes the header name its destination, node id.
func (ph *pathHeader) setDst(id identity.NodeID) {
	ph.dstTag, ph.hasDstTag = dstTagOf(id), true
}

// appendPath appends the path header and the carried Package.
func appendPath(b []byte, ph *pathHeader, inner *packet.Package) []byte {
	flags := byte(0)
	if len(ph.src) > 0 {
		flags |= pathSrc
	}
	if ph.hasNonce {
		flags |= pathNonce
	}
	if ph.hasDstTag {
		flags |= pathDst
	}
	b = append(b, flags, ph.phase)
	b = binary.BigEndian.AppendUint64(b, ph.bound)
	b = appendAddrList(b, ph.dst)
	if len(ph.src) > 0 {
		b = appendAddrList(b, ph.src)
	}
	if ph.hasNonce {
		b = binary.BigEndian.AppendUint64(b, ph.nonce)
	}
	if ph.hasDstTag {
		b = append(b, ph.dstTag[:]...)
	}
	return inner.AppendTo(b)
}

func appendAddrList(b []byte, l []TreeAddr) []byte {
	b = append(b, byte(len(l)))
	for _, a := range l {
		b = append(b, a.TreeState)
		b = a.Addr.AppendCompact(b)
	}
	return b
}

// decodePath reads a path header and the Package it carries (which aliases
// b). Errors wrap ErrControl.
func decodePath(b []byte, ph *pathHeader, inner *packet.Package) error {
	bad := func(why string) error { return fmt.Errorf("%w: path header: %s", ErrControl, why) }
	if len(b) < 2+8+1 {
		return bad(fmt.Sprintf("%d bytes", len(b)))
	}
	flags := b[0]
	if flags&^(pathSrc|pathNonce|pathDst) != 0 {
		return bad(fmt.Sprintf("flags %#x", flags))
	}
	ph.phase = b[1]
	ph.bound = binary.BigEndian.Uint64(b[2:10])
	var err error
	if ph.dst, b, err = readAddrList(b[10:], ph.dst[:0]); err != nil {
		return err
	}
	if len(ph.dst) == 0 {
		return bad("no destination")
	}
	if int(ph.phase) > len(ph.dst) {
		return bad(fmt.Sprintf("phase %d of %d addresses", ph.phase, len(ph.dst)))
	}
	ph.src = ph.src[:0]
	if flags&pathSrc != 0 {
		if ph.src, b, err = readAddrList(b, ph.src); err != nil {
			return err
		}
		if len(ph.src) == 0 {
			return bad("an empty origin list")
		}
	}
	ph.nonce, ph.hasNonce = 0, flags&pathNonce != 0
	if ph.hasNonce {
		if len(b) < 8 {
			return bad("truncated nonce")
		}
		ph.nonce = binary.BigEndian.Uint64(b)
		b = b[8:]
	}
	ph.dstTag, ph.hasDstTag = [dstTagSize]byte{}, flags&pathDst != 0
	if ph.hasDstTag {
		if len(b) < dstTagSize {
			return bad("truncated destination tag")
		}
		b = b[copy(ph.dstTag[:], b):]
	}
	if err := inner.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("%w: path header: the carried Package: %w", ErrControl, err)
	}
	return nil
}

func readAddrList(b []byte, out []TreeAddr) ([]TreeAddr, []byte, error) {
	if len(b) < 1 {
		return out, b, fmt.Errorf("%w: path header: no address count", ErrControl)
	}
	n := int(b[0])
	if n > maxPathAddrs {
		return out, b, fmt.Errorf("%w: path header: %d addresses", ErrControl, n)
	}
	b = b[1:]
	for range n {
		if len(b) < 1 {
			return out, b, fmt.Errorf("%w: path header: truncated address", ErrControl)
		}
		a := TreeAddr{TreeState: b[0], Tree: uint8(tree.TreeOf(b[0]))}
		var err error
		if a.Addr, b, err = addr.ReadCompact(b[1:]); err != nil {
			return out, b, fmt.Errorf("%w: path header: %w", ErrControl, err)
		}
		out = append(out, a)
	}
	return out, b, nil
}

// Potentials. A relay's potential for a Package in phase 0 is, over the
// destination's addresses in epochs the relay is in, the least distance
// (by the packet's metric, leases one level below their proxies) and then
// the sum of them all (an address in an epoch it is not in counts
// keyCap); in phase i ≥ 1 its distance to the i-th address alone. Phases
// rank below each other: a Package never climbs back to an earlier one. In
// each tree the next node on the tree path is a neighbour one step nearer,
// so while every tree is whole some neighbour is always below: the least
// distance falls, or stays and the sum falls. Distances are
// addr.Metric.PathKey: in mode 1 counted from the destination's depth
// ((|b|−cpl+1)<<9 | (|a|−cpl)) so that trees compare, each tree's
// positions ordered as the common-prefix distance orders them. The tree
// path still falls at every step in it: up to the common ancestor the
// prefix stays and |a|−cpl falls by one; down the destination's
// ancestors the prefix grows and |b|−cpl falls. A potential is a
// non-negative integer and the bound a Package carries falls strictly at
// every hop, so no Package can loop, whatever the keys compare.
const (
	keyCap = 1<<20 - 1 // one address's share of the sum
)

// potential packs (phase, least, sum) so that integer order is their order.
func potential(phase uint8, least, sum uint32) uint64 {
	return uint64(255-phase)<<56 | uint64(least)<<24 | uint64(sum)
}

// capKey bounds one distance to its share of the sum.
func capKey(k uint32) uint32 { return min(k, keyCap) }
