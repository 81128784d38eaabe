package tree

// What a node keeps per tree: its place in the current and previous epochs,
// the root it follows, and its neighbours' verified positions.

import (
	"crypto/ed25519"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

// slot is this node's position and the chain proving it.
type slot struct {
	pos    Position
	term   cert.Term // the epoch in full (tree_state alone may repeat across terms)
	chain  cert.Chain
	parent peer.Endpoint
	// children assigned in this epoch: child key → index.
	children map[identity.NodeID]uint8
	answered map[identity.NodeID]answer // when each child last got its chain, and how
	next     uint8
	// chainSent: we broadcast our whole chain when we took this place
	// (notifyAll), so the requests held for it are answered with the
	// certificate alone (StatusCert).
	chainSent bool
	// chainAgain: our second broadcast of the chain (notifyAll) has not
	// been sent yet; a child that got its certificate alone and asks for
	// the whole chain meanwhile gets it from that broadcast.
	chainAgain bool
}

// answer is our last answer to a child: when, whether it was the
// certificate alone, and whether the node is still sending it.
type answer struct {
	at       time.Time
	certOnly bool
	// sending: its send has not ended (acked, or given up). A whole chain
	// is a sequence of several frames; behind a busy relay's queue it took
	// tens of seconds, while the child asked again every few (h27clust4).
	sending bool
}

// waiter is a request held until we have a place: the asker's key, and
// whether it understands a certificate alone (the request's flags byte).
type waiter struct {
	id  identity.NodeID
	ext bool
}

// heldChain is a neighbour's chain kept while we have no place in its
// epoch: our parent-to-be's, so that its answer need carry only our
// certificate (StatusCert).
type heldChain struct {
	from  peer.Endpoint
	chain cert.Chain
}

// maxHeldChains bounds the neighbours' chains a tree keeps for that: a
// node asks one parent at a time, and moves to another only when that
// one fails; the few last chains broadcast round it are enough, and a
// node that lacks one is answered with the whole chain as before.
const maxHeldChains = 4

// certAnswer is a certificate answer whose issuer's chain we lack yet
// (its broadcast may come after its answers to those it held).
type certAnswer struct {
	from peer.Endpoint
	ts   uint8
	cert cert.Cert
}

// tree is one of the K trees.
type tree struct {
	t     *Trees
	k     uint8
	score [32]byte

	haveRoot  bool
	root      ed25519.PublicKey
	rootScore [32]byte
	term      int64
	ts        uint8
	latest    cert.Claim // the newest claim of the current root, for flooding
	flooded   int64      // the time of the claim we last passed on
	lastFresh time.Time
	rootDead  bool
	deadRoot  ed25519.PublicKey
	deadTime  int64 // the time of the last claim we had from deadRoot
	// deadTS is the tree_state byte of the term we buried last (hasDeadTS:
	// we buried one): a new term of ours does not take it (startTerm).
	deadTS    uint8
	hasDeadTS bool
	amRoot    bool

	cur, prev *slot
	// nbrs are the neighbours' verified positions by tree_state (current
	// and previous epochs), each list in Neighbors' order (by node_id, then
	// endpoint), replaced, never changed in place: a list handed out stays
	// as it was.
	nbrs       nbrLists
	ahead      map[peer.Endpoint]cert.Chain // positions in an epoch we have not entered yet
	epochAt    time.Time                    // when we entered the current epoch
	queried    map[peer.Endpoint]queryState // neighbours asked for their position: when, and how often unanswered
	pendingPos map[peer.Endpoint]message    // positions waiting for their parent's place
	pendingTmr clock.Timer
	retrying   bool
	answered   map[peer.Endpoint]time.Time   // last time we answered a worse claim there
	answerTo   map[peer.Endpoint]answerState // claimants of a worse root our answer is due to (election.go: answer)
	answerTmr  clock.Timer

	electTmr, claimTmr, reqTmr, renewTmr clock.Timer // renewTmr: a renewal asked for while the term was too young
	parentLost                           bool        // our parent in this epoch fell silent (reported once)
	probing                              bool        // a silent parent is being asked where it is
	blindTmr                             clock.Timer
	pending                              *peer.Endpoint
	pendingAt, heldAt                    time.Time                    // when we asked pending, and when it last said it holds our request
	reqOut                               int                          // requests to pending the node is still sending (not yet acked or failed)
	deep                                 bool                         // a parent refused us: our address would not fit 16 bytes
	hops                                 uint8                        // hop count of the claim being handled (255: none)
	upHops                               uint8                        // our distance to the root as the claims told (0: unknown)
	heard                                map[peer.Endpoint]uint8      // neighbours' distances to the root, from the claims they passed on
	listenEnd                            time.Time                    // the end of the listening at the start of the epoch
	waiting                              map[peer.Endpoint]waiter     // requests held until we have a place ourselves
	held                                 []heldChain                  // the last neighbours' chains broadcast while we had no place (maxHeldChains)
	certAns                              *certAnswer                  // a certificate answer waiting for its issuer's chain
	wantWhole                            bool                         // ask pending for the whole chain (a certificate answer could not be completed)
	wholeTmr                             clock.Timer                  // the wait for certAns's chain, then the ask for the whole one
	asked                                map[peer.Endpoint]askState   // queries out in this epoch
	tried                                map[peer.Endpoint]time.Time  // neighbours that failed us, and when
	full                                 map[peer.Endpoint]time.Time  // neighbours that had no room for us in this epoch, and when
	claims                               int                          // claims issued in this term
	startAt                              time.Time                    // cold-start elections begin no earlier
	termAt                               time.Time                    // when we started our current term as root
	left                                 []cert.Term                  // epochs left for good, newest last (see leave)
	gone                                 []goneEpoch                  // of those, the ones we held a place in, with our neighbours there (leaveSlot)
	pullers                              map[peer.Endpoint]time.Time  // neighbours that asked for a newer claim than we had, and when (pull.go)
	pulledAt                             time.Time                    // when we last asked our parent for one
	heldSince                            time.Time                    // since when a leaf's election is held back (elect: behindOne)
	acks                                 map[identity.NodeID]ackState // our term's proven neighbours that acked its claim, answered alone (rootYields)

	// watchAlarm runs watch every half claim period (Start, watch): one
	// alarm armed again, instead of a Timer and a method value each time
	// (2 % of what a route simulation allocates).
	watchAlarm clock.Alarm
}

// ackState is a proven neighbour that acked the claim of our term (the
// answer sent it alone) and has not passed that term's claim on since:
// when it last acked, and whether it has since passed on another live
// root's claim stamped more than a claim period after (it left our term
// for good: rootYields).
type ackState struct {
	at   time.Time
	left bool
}

// electionSpan: delays spread over the top 24 bits of the score gap's log.
