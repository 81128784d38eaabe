package e2e

import (
	"encoding/binary"
	"fmt"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

// Message types (the first byte of the e2e application's blob).
const (
	typeInit    = 0x01 // initiator → responder: Noise IK message 1
	typeResp    = 0x02 // responder → initiator: Noise IK message 2
	typeData    = 0x03 // a sealed Package
	typeNotice  = 0x04 // a sealed notice of the layer's own (a refused message)
	typeCookie  = 0x05 // responder → the source of a message 1 it had no budget for: a cookie to echo
	typeInitMAC = 0x06 // message 1 ‖ mac (16): a message 1 that echoes the responder's cookie
)

// Sizes on the wire [ours].
const (
	keySize = 32
	tagSize = 16
	// initPayload is what the initiator says inside message 1: its
	// node_id (the responder checks that the static key it proved maps
	// from it) and its clock (each initiator's must grow: a replayed
	// message 1 is refused).
	initPayload = identity.NodeIDSize + 8
	// InitSize: type ‖ sender index ‖ e ‖ enc(s) ‖ enc(payload).
	InitSize = 1 + 4 + keySize + (keySize + tagSize) + (initPayload + tagSize)
	// RespSize: type ‖ sender index ‖ receiver index ‖ e ‖ enc(empty).
	RespSize = 1 + 4 + 4 + keySize + tagSize
	// dataHeader: type ‖ receiver index ‖ counter.
	dataHeader = 1 + 4 + 8
	// Overhead is what sealing adds to a Package: the data header and the
	// AEAD tag (the inner app_id travels sealed, in place of the outer
	// Package's, which names this application).
	Overhead = dataHeader + tagSize
	// NoticeSize is a sealed notice's size.
	NoticeSize = dataHeader + ctrlRefusedSize + tagSize
	// CookieLen is a cookie's and a cookie MAC's length.
	CookieLen = 16
	// CookieSize: type ‖ receiver index (the initiator's, from its
	// message 1) ‖ cookie.
	CookieSize = 1 + 4 + CookieLen
	// InitMACSize: a message 1 (its type 0x06) ‖ HMAC-SHA-256(cookie,
	// those InitSize bytes), the first 16 bytes.
	InitMACSize = InitSize + CookieLen
)

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
}

// decodeHeader checks a message's type and length and returns its type.
func decodeHeader(b []byte) (byte, error) {
	if len(b) == 0 {
		return 0, malformed("empty")
	}
	switch b[0] {
	case typeInit:
		if len(b) != InitSize {
			return 0, malformed("init of %d bytes", len(b))
		}
	case typeInitMAC:
		if len(b) != InitMACSize {
			return 0, malformed("init with a cookie MAC of %d bytes", len(b))
		}
	case typeCookie:
		if len(b) != CookieSize {
			return 0, malformed("cookie of %d bytes", len(b))
		}
	case typeResp:
		if len(b) != RespSize {
			return 0, malformed("response of %d bytes", len(b))
		}
	case typeData:
		if len(b) < dataHeader+tagSize+16 { // at least the sealed app_id
			return 0, malformed("data of %d bytes", len(b))
		}
	case typeNotice:
		if len(b) != NoticeSize {
			return 0, malformed("notice of %d bytes", len(b))
		}
	default:
		return 0, malformed("type %#x", b[0])
	}
	return b[0], nil
}

func u32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
