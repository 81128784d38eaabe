package cert

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/mycelium-mesh/mycelium/l3-route/addr"
)

var updateCorpus = flag.Bool("update", false, "rewrite the seed corpora in testdata/fuzz")

type seed struct {
	name string
	data []byte
}

// chainSeeds are real chains (deterministic keys and times, so their bytes
// are stable) and typical damage to them.
func chainSeeds(t testing.TB) []seed {
	d0 := buildChain(t, 0, testTerm, 0)
	d1 := buildChain(t, 1, testTerm, 0, 3)
	d5 := buildChain(t, 2, testTerm, 0, 1, 8, 3, 135, 2)
	d20 := buildChain(t, 3, testTerm, 0, indices20...)
	bad := mutate(d5, func(c *Chain) { c.Certs[2].Sig[5] ^= 0x10 })
	e5 := encode(&d5)
	return []seed{
		{"valid_depth0", encode(&d0)},
		{"valid_depth1", encode(&d1)},
		{"valid_depth5", e5},
		{"valid_depth20", encode(&d20)},
		{"bad_sig_level2", encode(&bad)},
		{"index_changed_level3", withByte(e5, ClaimSize+1+3*CertSize+32, 4)},
		{"index_0", withByte(e5, ClaimSize+1+32, 0)},
		{"truncated", e5[:len(e5)-1]},
		{"trailing", append(slices.Clone(e5), 0)},
		{"count_33", rawChain(33, slices.Repeat([]uint8{1}, 33)...)},
		{"overflow_17x16", rawChain(17, slices.Repeat([]uint8{16}, 17)...)},
		{"full_32x1", rawChain(32, slices.Repeat([]uint8{1}, 32)...)},
	}
}

func claimSeeds(t testing.TB) []seed {
	c := NewClaim(key(0), 0, testTerm, testNow)
	b := c.AppendTo(nil)
	return []seed{
		{"valid", b},
		{"valid_tree15", func() []byte { c := NewClaim(key(1), 15, -1, 0); return c.AppendTo(nil) }()},
		{"bad_sig", withByte(b, ClaimSize-1, b[ClaimSize-1]^1)},
		{"short", b[:ClaimSize-1]},
		{"long", append(slices.Clone(b), 0)},
	}
}

func corpusFile(data []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
}

// TestSeedCorpus keeps testdata/fuzz in step with the seeds. As the seeds
// are deterministic, it is also a golden test of the wire format: an
// encoding or signature change shows up here (regenerate with -update only
// when the change is meant).
func TestSeedCorpus(t *testing.T) {
	for target, seeds := range map[string][]seed{"FuzzChain": chainSeeds(t), "FuzzClaim": claimSeeds(t)} {
		dir := filepath.Join("testdata", "fuzz", target)
		for _, s := range seeds {
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
				t.Errorf("%v (run go test -run TestSeedCorpus -update)", err)
			} else if !bytes.Equal(got, want) {
				t.Errorf("%s is out of date: the encoding changed (if meant, run go test -run TestSeedCorpus -update)", path)
			}
		}
	}
}

// isCodecError reports whether err is one a decoder may return.
func isCodecError(err error) bool {
	for _, e := range []error{ErrTooShort, ErrLength, ErrTooLong, ErrIndex} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// warmVerifier is shared by fuzz iterations and has verified the seed
// chains, so that mutations of them run through the cached path, whose
// answers must equal a cold Verifier's.
var warm struct {
	sync.Mutex
	v *Verifier
}

func warmVerifier(t testing.TB) *Verifier {
	warm.Lock()
	defer warm.Unlock()
	if warm.v == nil {
		warm.v = NewVerifier(nil)
		for _, s := range chainSeeds(t) {
			var ch Chain
			if ch.UnmarshalBinary(s.data) == nil {
				_, _ = warm.v.Verify(&ch)
			}
		}
	}
	return warm.v
}

// lenientChain reads whatever fits of a claim and certificates from b,
// ignoring the count and every limit, so that Address and Verify also meet
// chains the decoder would refuse.
func lenientChain(b []byte) Chain {
	var ch Chain
	if len(b) >= ClaimSize {
		ch.Claim.decode(b)
		b = b[ClaimSize:]
	}
	if len(b) > 0 {
		b = b[1:]
	}
	for len(b) >= CertSize && len(ch.Certs) < 40 {
		var c Cert
		c.decode(b)
		ch.Certs = append(ch.Certs, c)
		b = b[CertSize:]
	}
	return ch
}

// checkVerify runs a warm and a cold Verifier on ch: they must agree, and a
// success must give the chain's address.
func checkVerify(t *testing.T, ch *Chain) {
	v := warmVerifier(t)
	warm.Lock()
	wa, werr := v.Verify(ch)
	warm.Unlock()
	ca, cerr := NewVerifier(nil).Verify(ch)
	if (werr == nil) != (cerr == nil) || wa != ca {
		t.Fatalf("warm Verify = %v, %v; cold = %v, %v", wa, werr, ca, cerr)
	}
	if cerr != nil {
		if !errors.Is(cerr, ErrSignature) && !errors.Is(cerr, ErrIndex) && !errors.Is(cerr, ErrTooLong) {
			t.Fatalf("Verify error of no known kind: %v", cerr)
		}
		return
	}
	a, err := ch.Address()
	if err != nil || a != ca {
		t.Fatalf("Verify gave %v but Address %v, %v", ca, a, err)
	}
}

// FuzzChain: any bytes decode or fail with a codec error and no change;
// what decodes re-encodes identically and has an address; Verify never
// panics, and its cache never changes its answer.
func FuzzChain(f *testing.F) {
	for _, s := range chainSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ch Chain
		err := ch.UnmarshalBinary(data)
		if err != nil {
			if !isCodecError(err) {
				t.Fatalf("decode error of no known kind: %v", err)
			}
			if ch.Claim != (Claim{}) || ch.Certs != nil {
				t.Fatal("chain modified on error")
			}
			lc := lenientChain(data)
			_, _ = lc.Address()
			checkVerify(t, &lc)
			return
		}
		if got := ch.AppendTo(nil); !bytes.Equal(got, data) || ch.Size() != len(data) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", data, got)
		}
		if ch.Depth() != int(data[ClaimSize]) {
			t.Fatalf("depth %d, count byte %d", ch.Depth(), data[ClaimSize])
		}
		a, err := ch.Address()
		if err != nil {
			t.Fatalf("decoded chain has no address: %v", err)
		}
		coords := make([]uint8, ch.Depth())
		for i := range ch.Certs {
			coords[i] = ch.Certs[i].Index
		}
		if want, err := addr.EncodeLong(coords); err != nil || want != a {
			t.Fatalf("Address %v, addr.Encode %v, %v", a, want, err)
		}
		checkVerify(t, &ch)
	})
}

// FuzzClaim: any bytes decode or fail with a codec error and no change;
// what decodes re-encodes identically; nothing panics, and the cache never
// changes VerifyClaim's answer.
func FuzzClaim(f *testing.F) {
	for _, s := range claimSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Claim
		if err := c.UnmarshalBinary(data); err != nil {
			if !isCodecError(err) {
				t.Fatalf("decode error of no known kind: %v", err)
			}
			if c != (Claim{}) {
				t.Fatal("claim modified on error")
			}
			return
		}
		if got := c.AppendTo(nil); !bytes.Equal(got, data) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", data, got)
		}
		_ = c.TreeState()
		_ = c.Score()
		_ = c.CheckFresh(c.Time, 0)
		_ = c.CheckFresh(testNow, 30e9)
		_ = c.CheckTerm(c.Tree, c.Root[:], c.TermStart)
		v := warmVerifier(t)
		warm.Lock()
		werr := v.VerifyClaim(&c)
		warm.Unlock()
		cerr := NewVerifier(nil).VerifyClaim(&c)
		if (werr == nil) != (cerr == nil) || (cerr != nil && !errors.Is(cerr, ErrSignature)) {
			t.Fatalf("warm VerifyClaim = %v, cold = %v", werr, cerr)
		}
		if err := c.CheckFresh(c.Time, 0); err != nil {
			t.Fatalf("a claim is not fresh at its own time: %v", err)
		}
	})
}
