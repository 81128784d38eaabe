package lab

import (
	"maps"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// operatorRing is what the revocation tests share: an operator key the
// nodes list in [trust] operators, a rogue key they do not, and a ring of
// three nodes (not started yet) configured so.
type operatorRing struct {
	bin, dir string
	// op is the operator's public key as `keys operator new` prints it;
	// opKey and rogueKey are the two private key files.
	op, opKey, rogueKey string
	nodes               []*Node
}

// newOperatorRing makes both keys and the ring; edits go on top of
// FastTiming and the operator list.
func newOperatorRing(t *testing.T, prefix string, edits map[string]string) operatorRing {
	t.Helper()
	r := operatorRing{bin: binary(t), dir: t.TempDir()}
	r.opKey, r.rogueKey = filepath.Join(r.dir, "op.pem"), filepath.Join(r.dir, "rogue.pem")
	out, err := exec.Command(r.bin, "keys", "operator", "new", "--out", r.opKey).Output()
	if err != nil {
		t.Fatal(err)
	}
	r.op = strings.TrimSpace(string(out))
	if out, err := r.cli("keys", "operator", "new", "--out", r.rogueKey); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	all := maps.Clone(FastTiming)
	all["trust.operators"] = `["` + r.op + `"]`
	maps.Copy(all, edits)
	if r.nodes, err = Ring(r.bin, r.dir, prefix, 3, all); err != nil {
		t.Fatal(err)
	}
	return r
}

// cli runs the command and returns what it printed, stdout and stderr.
func (r operatorRing) cli(args ...string) (string, error) {
	out, err := exec.Command(r.bin, args...).CombinedOutput()
	return string(out), err
}
