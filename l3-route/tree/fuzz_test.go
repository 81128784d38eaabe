package tree

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

var updateCorpus = flag.Bool("update", false, "rewrite the seed corpus in testdata/fuzz")

type seed struct {
	name string
	data []byte
}

// messageSeeds are real messages of every type and status, built from
// fixed keys and times, so their bytes are stable.
func messageSeeds(t testing.TB) []seed {
	t.Helper()
	key := func(i byte) identity.Identity { return identity.FromSeed([32]byte{'t', 'r', 'e', 'e', i}) }
	root := key(0)
	const start = int64(1767225600000000000) // clock.Epoch
	term := termIn(root.Public(), 1, start)
	claim := cert.NewClaim(root, 1, term, term+20e9)
	chain := func(depth int) cert.Chain {
		ch := cert.Chain{Claim: claim}
		holder := root
		for i := range depth {
			next := key(byte(i + 1))
			var err error
			if ch, err = ch.Extend(holder, next.Public(), uint8(2*i+1)); err != nil {
				t.Fatal(err)
			}
			holder = next
		}
		return ch
	}
	d0, d1, d2, d3 := chain(0), chain(1), chain(2), chain(3)
	ts := claim.TreeState()
	return []seed{
		{"claim", appendClaim(nil, &claim, 3)},
		{"claim_without_hops", claim.AppendTo([]byte{MsgClaim})},
		{"notify_root", appendNotify(nil, &d0)},
		{"notify_depth2", appendNotify(nil, &d2)},
		{"request", append([]byte{MsgRequest, 1, ts}, key(9).Public()...)}, // without the flags byte
		{"request_flags", appendRequest(nil, 1, ts, key(9).Public(), 0)},
		{"request_have_chain", appendRequest(nil, 1, ts, key(9).Public(), ReqHaveChain)},
		{"response_ok", appendResponse(nil, StatusOK, &d1)},
		{"response_cert", appendCertResponse(nil, 1, ts, &d2.Certs[1])},
		{"response_no_position", appendResponse(nil, StatusNoPosition, nil)},
		{"response_full", appendResponse(nil, StatusFull, nil)},
		{"response_too_deep", appendResponse(nil, StatusTooDeep, nil)},
		{"response_refused", appendResponse(nil, StatusRefused, nil)},
		{"response_wait", appendResponse(nil, StatusWait, nil)},
		{"query", appendQuery(nil, 1, ts, 2)},
		{"suffix", appendSuffix(nil, &d3, 2)},
		{"position", appendPosition(nil, &d2)},
	}
}

func corpusFile(data []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
}

// TestMessageSeedCorpus keeps testdata/fuzz/FuzzMessage in step with the
// seeds, and so is a golden test of the wire format: every seed must also
// decode and re-encode to itself (regenerate with -update only when a
// change is meant).
func TestMessageSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzMessage")
	for _, s := range messageSeeds(t) {
		var m message
		if err := m.decode(s.data); err != nil {
			t.Errorf("%s: %v", s.name, err)
		} else if got := encodeMessage(&m); !bytes.Equal(got, s.data) && !(s.name == "claim_without_hops" && bytes.Equal(got, append(bytes.Clone(s.data), 255))) {
			t.Errorf("%s: re-encoded as %x, want %x", s.name, got, s.data)
		}
		path := filepath.Join(dir, s.name)
		want := corpusFile(s.data)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v (run go test -run TestMessageSeedCorpus -update)", s.name, err)
		} else if !bytes.Equal(got, want) {
			t.Errorf("%s: corpus file differs from the seed (wire format changed?)", s.name)
		}
	}
}

// encodeMessage is the encoding of a decoded message, with the package's
// own append helpers where there is one.
func encodeMessage(m *message) []byte {
	switch m.typ {
	case MsgClaim:
		return appendClaim(nil, &m.claim, m.hops)
	case MsgNotify:
		return appendNotify(nil, &m.chain)
	case MsgRequest:
		if !m.ext {
			return append([]byte{MsgRequest, m.tree, m.treeState}, m.parent[:]...)
		}
		return appendRequest(nil, m.tree, m.treeState, m.parent[:], m.flags)
	case MsgQuery:
		return appendQuery(nil, m.tree, m.treeState, m.want)
	case MsgSuffix:
		b := append([]byte{MsgSuffix, m.tree, m.treeState}, m.parent[:]...)
		for i := range m.certs {
			b = m.certs[i].AppendTo(b)
		}
		return b
	case MsgPosition:
		return appendPositionMsg(m)
	case MsgResponse:
		if m.status == StatusCert {
			return appendCertResponse(nil, m.tree, m.treeState, &m.cert)
		}
		if m.status != StatusOK {
			return []byte{MsgResponse, m.status}
		}
		return appendResponse(nil, StatusOK, &m.chain)
	}
	return nil
}

// FuzzMessage: decode never panics, never changes or keeps its input,
// fails only with the package's or cert's typed errors, and what it
// accepts re-encodes to exactly the input (a claim without the hops byte
// re-encodes with "no hint", 255).
func FuzzMessage(f *testing.F) {
	for _, s := range messageSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		var m message
		err := m.decode(b)
		if !bytes.Equal(b, in) {
			t.Fatal("decode changed its input")
		}
		if err != nil {
			for _, e := range []error{ErrMessage, cert.ErrTooShort, cert.ErrLength, cert.ErrTooLong, cert.ErrIndex} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("untyped error: %v", err)
		}
		for i := range b {
			b[i] ^= 0xa5 // the decoded message must not alias the input
		}
		want := in
		if m.typ == MsgClaim && len(in) == 1+cert.ClaimSize {
			if m.hops != 255 {
				t.Fatalf("claim without hops decoded with hops %d", m.hops)
			}
			want = append(bytes.Clone(in), 255)
		}
		if got := encodeMessage(&m); !bytes.Equal(got, want) {
			t.Fatalf("type %#x: re-encoded %x\nfrom %x", m.typ, got, in)
		}
		// Whatever parses has an address (or is not a chain at all).
		if m.typ == MsgNotify || (m.typ == MsgResponse && m.status == StatusOK) {
			if _, err := m.chain.Address(); err != nil {
				t.Fatalf("decoded chain without an address: %v", err)
			}
		}
	})
}
