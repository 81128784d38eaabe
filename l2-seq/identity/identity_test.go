package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "node.key")
	id, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode().Perm(), err)
	}
	again, created, err := LoadOrCreate(path)
	if err != nil || created || again.ID() != id.ID() {
		t.Fatalf("reload: %v %v", created, err)
	}
	msg := []byte("tree address")
	if !ed25519.Verify(again.Public(), msg, id.Sign(msg)) {
		t.Fatal("signature")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(path); !errors.Is(err, ErrPermissions) {
		t.Fatalf("world-readable key accepted: %v", err)
	}
	if err := Save(path, id); err == nil {
		t.Fatal("Save overwrote a key")
	}
}

func TestBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(path); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestFromSeed(t *testing.T) {
	a, b := FromSeed([32]byte{1}), FromSeed([32]byte{1})
	if a.ID() != b.ID() || a.ID() == FromSeed([32]byte{2}).ID() {
		t.Fatal("seeded identities")
	}
	if len(a.ID().String()) != 64 || len(a.ID().Short()) != 8 {
		t.Fatal("formatting")
	}
}

// Save leaves nothing behind but the key: no temporary file, whether it
// succeeds or refuses an existing file, and an existing file keeps its
// bytes.
func TestSaveAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.pem")
	id, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Save(path, id); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	other, _ := Generate(nil)
	if err := Save(path, other); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second save: %v, want ErrExist", err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("a refused save changed the key file")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "identity.pem" {
		t.Fatalf("directory holds %v", ents)
	}
	got, err := Load(path)
	if err != nil || got.ID() != id.ID() {
		t.Fatalf("load: %v", err)
	}
}

func TestX25519FromIdentity(t *testing.T) {
	for i := range 8 {
		id := FromSeed([32]byte{byte(i), 1})
		_, pub := id.X25519()
		got, err := X25519Public(id.ID())
		if err != nil || !bytes.Equal(got, pub) {
			t.Fatalf("seed %d: derived %x, mapped %x (%v)", i, pub, got, err)
		}
	}
	bad := NodeID{2} // y = 2 is on no Ed25519 point
	if _, err := X25519Public(bad); err == nil {
		t.Fatal("a non-point has an X25519 key")
	}
}

func TestRotateAndExport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	old, _, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	id, prev, err := Rotate(path, 1234)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Load(path); err != nil || got.ID() != id.ID() || id.ID() == old.ID() {
		t.Fatalf("after rotation the file holds %v (%v)", got.ID().Short(), err)
	}
	if got, err := Load(prev); err != nil || got.ID() != old.ID() {
		t.Fatalf("the old key was not kept: %v", err)
	}
	if _, _, err := Rotate(path, 1234); err == nil {
		t.Fatal("a rotation overwrote a kept key")
	}
	got, err := ParsePublicPEM(PublicPEM(id.ID()))
	if err != nil || got != id.ID() {
		t.Fatalf("public identity round trip: %v", err)
	}
	if _, err := ParsePublicPEM([]byte("junk")); err == nil {
		t.Fatal("junk parsed as a public identity")
	}
}

func TestLoadRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.key")
	if _, _, err := LoadOrCreate(path); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(link); err == nil {
		t.Fatal("a key loaded through a symbolic link")
	}
}

// WritePrivate replaces a file whole, private, and leaves no temporary
// file; ReadPrivate reads only a private regular file of ours, never
// through a symbolic link.
func TestPrivateFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "state")
	for _, data := range []string{"first", "second, longer"} {
		if err := WritePrivate(path, []byte(data)); err != nil {
			t.Fatal(err)
		}
		got, err := ReadPrivate(path, 1<<10)
		if err != nil || string(got) != data {
			t.Fatalf("read %q, %v; want %q", got, err, data)
		}
		st, _ := os.Stat(path)
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v", st.Mode().Perm())
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
	if got, err := ReadPrivate(path, 5); err != nil || string(got) != "secon" {
		t.Fatalf("limit: %q %v", got, err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivate(link, 1<<10); err == nil {
		t.Fatal("read through a symbolic link")
	}
	if _, err := Load(link); err == nil {
		t.Fatal("a key loaded through a symbolic link")
	}
	os.Chmod(path, 0o640)
	if _, err := ReadPrivate(path, 1<<10); !errors.Is(err, ErrPermissions) {
		t.Fatalf("group-readable: %v", err)
	}
}

// Rotate keeps the old key beside the new one, both private, and refuses
// a key file that is not private.
func TestRotate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.pem")
	old, _, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	id, prev, err := Rotate(path, 1000)
	if err != nil || id.ID() == old.ID() {
		t.Fatalf("rotate: %v", err)
	}
	if got, err := Load(path); err != nil || got.ID() != id.ID() {
		t.Fatalf("new: %v", err)
	}
	if got, err := Load(prev); err != nil || got.ID() != old.ID() {
		t.Fatalf("kept: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, _, err := Rotate(path, 1001); !errors.Is(err, ErrPermissions) {
		t.Fatalf("open key rotated: %v", err)
	}
}
