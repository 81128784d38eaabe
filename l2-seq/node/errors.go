package node

import (
	"errors"
	"fmt"
)

// Errors a send reports. Each has a one-byte code so that a peer can send it
// back on the wire (an ack or packet with the error flag whose body starts
// with the code, PROTOCOL 7 [ours]); errors.Is works on what Result.Err
// returns, whether the error arose here or came back from the mesh.
var (
	ErrNoRoute     = &CodeError{Code: 1, msg: "no route to the destination"}
	ErrHopLimit    = &CodeError{Code: 2, msg: "hop limit reached"}
	ErrUnknownApp  = &CodeError{Code: 3, msg: "no such application at the destination"}
	ErrPeerAsleep  = &CodeError{Code: 4, msg: "peer asleep: it never answered the wake-up requests"}
	ErrAbandoned   = &CodeError{Code: 5, msg: "sequence abandoned: no progress after every retry"}
	ErrChecksum    = &CodeError{Code: 6, msg: "checksum failed"}
	ErrNoMemory    = &CodeError{Code: 7, msg: "the receiver has no room for the Package"}
	ErrBadHash     = &CodeError{Code: 8, msg: "the Package's hash did not match its blob"}
	ErrThrottled   = &CodeError{Code: 9, msg: "throttled past the send's deadline"}
	ErrTooLarge    = &CodeError{Code: 10, msg: "Package larger than any schema the peer shares can carry"}
	ErrNoSchema    = &CodeError{Code: 11, msg: "no schema common to the destination's links"}
	ErrUnknownPeer = &CodeError{Code: 12, msg: "unknown peer"}
	ErrBusy        = &CodeError{Code: 13, msg: "too many sends waiting for this peer"}
	ErrClosed      = &CodeError{Code: 14, msg: "node closed"}
	ErrLink        = &CodeError{Code: 15, msg: "the link refused the datagram"}
	// ErrReferenceLength: a reference node never delivers a sequence whose
	// Package fills its last packet exactly (PROTOCOL 4), so we do not send one.
	ErrReferenceLength = &CodeError{Code: 16, msg: "Package length a multiple of the body size: a reference node cannot reassemble it"}
	// ErrSource: the reader a stream was sent from failed or ended early.
	ErrSource = &CodeError{Code: 17, msg: "the stream's source could not be read"}
	// ErrStreamLost: the receiver no longer knows a stream whose first
	// segment it had confirmed (it restarted, or the stream went idle).
	ErrStreamLost = &CodeError{Code: 18, msg: "the receiver lost the stream"}
	// ErrUnauthenticated: an end-to-end sealed Package did not
	// authenticate at its destination (changed on the way, or for a
	// session it does not have) and was not delivered (l2-seq/e2e).
	ErrUnauthenticated = &CodeError{Code: 19, msg: "the Package did not authenticate end to end (tampered with, or for an unknown session)"}
	// ErrReplayed: the destination had delivered this sealed Package
	// already (its counter is in the replay window) and did not again.
	ErrReplayed = &CodeError{Code: 20, msg: "the sealed Package was a replay"}
	// ErrHandshake: no end-to-end session could be set up with the
	// destination (its handshake went unanswered, or it has no key).
	ErrHandshake     = &CodeError{Code: 21, msg: "no end-to-end session with the destination"}
	errUnknownRemote = &CodeError{Code: 255, msg: "the peer reported an error we do not know"}
)

var byCode = map[uint8]*CodeError{}

func init() {
	for _, e := range []*CodeError{ErrNoRoute, ErrHopLimit, ErrUnknownApp, ErrPeerAsleep, ErrAbandoned, ErrChecksum, ErrNoMemory, ErrBadHash, ErrThrottled, ErrTooLarge, ErrNoSchema, ErrUnknownPeer, ErrBusy, ErrClosed, ErrLink, ErrReferenceLength, ErrSource, ErrStreamLost, ErrUnauthenticated, ErrReplayed, ErrHandshake} {
		byCode[e.Code] = e
	}
}

// CodeError is a typed send error with its wire code.
type CodeError struct {
	Code uint8
	msg  string
}

func (e *CodeError) Error() string { return "mesh: " + e.msg }

// ErrorForCode maps a wire code to its error.
func ErrorForCode(code uint8) error {
	if e, ok := byCode[code]; ok {
		return e
	}
	return errUnknownRemote
}

// CodeOf returns the wire code of err (0 if it has none).
func CodeOf(err error) uint8 {
	var ce *CodeError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// RemoteError wraps an error reported by another node.
type RemoteError struct {
	Err  error
	From string // who reported it, when known
}

func (e *RemoteError) Error() string { return fmt.Sprintf("%v (reported by %s)", e.Err, e.From) }

// Unwrap returns the reported error.
func (e *RemoteError) Unwrap() error { return e.Err }
