// Package identity is a node's Ed25519 key pair: its public key is the
// node_id the mesh knows it by (PROTOCOL 1), and it signs what the node
// vouches for (tree addresses). The private key lives in a file only the
// node's user can read, created on first start.
package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// NodeIDSize is the size of a node_id.
const NodeIDSize = ed25519.PublicKeySize

// NodeID is a node's public key; boards use other opaque 32-byte ids.
type NodeID [NodeIDSize]byte

// String is the id in hex.
func (n NodeID) String() string { return hex.EncodeToString(n[:]) }

// Short is the first 8 hex digits, for logs and tables.
func (n NodeID) Short() string { return hex.EncodeToString(n[:4]) }

// Identity is a node's key pair. Its private key never leaves it: what
// needs signatures is handed the Identity as a Signer, and only Save writes
// the key out (to a file only the node's user can read).
type Identity struct {
	priv ed25519.PrivateKey
}

// Signer signs on a node's behalf without handing out its private key;
// an Identity is one.
type Signer interface {
	// Public returns the public key signatures verify with.
	Public() ed25519.PublicKey
	// Sign returns the Ed25519 signature of msg.
	Sign(msg []byte) []byte
}

// IsZero reports an Identity with no key (the zero value).
func (i Identity) IsZero() bool { return i.priv == nil }

// ID returns the node_id (the public key).
func (i Identity) ID() NodeID {
	var id NodeID
	copy(id[:], i.Public())
	return id
}

// Public returns the public key.
func (i Identity) Public() ed25519.PublicKey { return i.priv.Public().(ed25519.PublicKey) }

// Sign signs msg.
func (i Identity) Sign(msg []byte) []byte { return ed25519.Sign(i.priv, msg) }

// Generate makes a new identity from r (crypto/rand.Reader when nil).
func Generate(r io.Reader) (Identity, error) {
	if r == nil {
		r = rand.Reader
	}
	_, priv, err := ed25519.GenerateKey(r)
	if err != nil {
		return Identity{}, fmt.Errorf("identity: %w", err)
	}
	return Identity{priv: priv}, nil
}

// FromSeed derives an identity from a 32-byte seed (for simulations, where
// every run must give the same keys).
func FromSeed(seed [ed25519.SeedSize]byte) Identity {
	return Identity{priv: ed25519.NewKeyFromSeed(seed[:])}
}

// ErrPermissions reports a key file that others can read.
var ErrPermissions = errors.New("identity: key file permissions too open (want 0600)")

const pemType = "PRIVATE KEY"

// LoadOrCreate reads the identity at path, or creates one there (mode 0600,
// in a directory created 0700 if missing) when the file does not exist. It
// refuses a key file readable by group or others, as ssh does. created
// reports a new key.
func LoadOrCreate(path string) (id Identity, created bool, err error) {
	id, err = Load(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return id, false, err
	}
	if id, err = Generate(nil); err != nil {
		return id, false, err
	}
	if err := Save(path, id); err != nil {
		return Identity{}, false, err
	}
	return id, true, nil
}

// ErrOwner reports a key file owned by another user than the one running
// us (as ssh refuses one).
var ErrOwner = errors.New("identity: key file owned by another user")

// Load reads an identity from a PKCS #8 PEM file. The checks and the read
// are made on one open file (no symlink followed), so the file checked is
// the file read: it must be a regular file, ours, and readable by nobody
// else (mode 0600 or stricter).
func Load(path string) (Identity, error) {
	b, err := ReadPrivate(path, 64<<10)
	if err != nil {
		return Identity{}, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != pemType {
		return Identity{}, fmt.Errorf("identity: %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return Identity{}, fmt.Errorf("identity: %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return Identity{}, fmt.Errorf("identity: %s: not an Ed25519 key", path)
	}
	return Identity{priv: priv}, nil
}

// ReadPrivate reads at most limit bytes of a file that must be private to
// us: a regular file (no symlink followed), ours, readable by nobody else
// (mode 0600 or stricter). The checks and the read are made on one open
// file, so the file checked is the file read (no time-of-check gap).
func ReadPrivate(path string, limit int64) ([]byte, error) {
	f, err := openNoFollow(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("identity: %s: not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is %v", ErrPermissions, path, st.Mode().Perm())
	}
	if err := checkOwner(st); err != nil {
		return nil, fmt.Errorf("%w: %s", err, path)
	}
	return io.ReadAll(io.LimitReader(f, limit))
}

// Rotate replaces the identity at path with a new one, atomically: the old
// key is kept (hard-linked) as path.prev-UNIXTIME first, the new one is
// written to a temporary file, synced, and renamed over path, so path
// always holds a whole key, old or new. It returns the new identity and
// where the old one went.
func Rotate(path string, now int64) (Identity, string, error) {
	if _, err := Load(path); err != nil {
		return Identity{}, "", err
	}
	id, err := Generate(nil)
	if err != nil {
		return Identity{}, "", err
	}
	prev := fmt.Sprintf("%s.prev-%d", path, now)
	if err := os.Link(path, prev); err != nil {
		return Identity{}, "", fmt.Errorf("identity: keeping the old key: %w", err)
	}
	// What was checked above may have been swapped since: the copy kept is
	// checked again, on the link itself (ours, private, a key).
	if _, err := Load(prev); err != nil {
		os.Remove(prev)
		return Identity{}, "", fmt.Errorf("identity: the key changed while rotating: %w", err)
	}
	tmp := fmt.Sprintf("%s.new-%d", path, now)
	if err := Save(tmp, id); err != nil {
		return Identity{}, "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return Identity{}, "", fmt.Errorf("identity: %w", err)
	}
	syncDir(filepath.Dir(path))
	return id, prev, nil
}

// PublicPEM is a node's public identity, to hand to others (an operator
// list, a peer's configuration): its Ed25519 public key as a PKIX PEM
// block, with the node_id as a header.
func PublicPEM(id NodeID) []byte {
	der, _ := x509.MarshalPKIXPublicKey(ed25519.PublicKey(id[:]))
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Node-Id": id.String()}, Bytes: der})
}

// ParsePublicPEM reads what PublicPEM wrote (or any PKIX Ed25519 public key).
func ParsePublicPEM(b []byte) (NodeID, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return NodeID{}, errors.New("identity: not a PEM public key")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return NodeID{}, fmt.Errorf("identity: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return NodeID{}, errors.New("identity: not an Ed25519 public key")
	}
	return NodeID(pub), nil
}

// WritePrivate replaces the file at path with data, atomically and
// privately: data goes to a temporary file (mode 0600) in the same
// directory, is synced, and is renamed over path, so path always holds the
// whole old content or the whole new one, readable by us alone.
func WritePrivate(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // gone after the rename; left only on failure
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	syncDir(dir)
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Save writes id to a new file at path with mode 0600, atomically: the key
// goes to a temporary file in the same directory, is synced, and is linked
// to path only when complete, so a crash never leaves a half-written key
// and an existing file is never overwritten (the link fails instead).
func Save(path string, id Identity) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if id.IsZero() {
		return errors.New("identity: no key to save")
	}
	der, err := x509.MarshalPKCS8PrivateKey(id.priv)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("identity: %s: %w", path, fs.ErrExist)
	}
	f, err := os.CreateTemp(dir, ".identity-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("identity: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: pemType, Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("identity: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("identity: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	// The new name must survive a crash too.
	syncDir(dir)
	return nil
}

// Revocations tells whether a node_id was revoked (an operator declared
// its key compromised). The layers take it as this small interface and
// refuse a revoked node as a proven neighbour, a record's signer or an
// end-to-end peer; whoever holds the operators' keys and the signed
// revocations (package revoke, wired by the daemon) answers it. It is
// asked on the node's loop and must not block.
type Revocations interface {
	Revoked(NodeID) bool
}
