package control

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

func TestParseApp(t *testing.T) {
	id, err := ParseApp("files")
	if err != nil || id != packet.NewAppID("files", "", 1) {
		t.Fatalf("name: %x %v", id, err)
	}
	want := packet.NewAppID("x", "y", 7)
	id, err = ParseApp(hex.EncodeToString(want[:]))
	if err != nil || id != want {
		t.Fatalf("hex: %x %v", id, err)
	}
	if _, err := ParseApp("  "); err == nil {
		t.Fatal("empty app accepted")
	}
}

func TestSocketPath(t *testing.T) {
	t.Setenv(EnvSocket, "")
	if got := SocketPath(""); got != DefaultSocket {
		t.Fatalf("default %s", got)
	}
	t.Setenv(EnvSocket, "/tmp/x.sock")
	if got := SocketPath(""); got != "/tmp/x.sock" {
		t.Fatalf("env %s", got)
	}
	if got := SocketPath("/flag.sock"); got != "/flag.sock" {
		t.Fatalf("flag %s", got)
	}
}

// The client reads the daemon's typed errors, and says plainly when there
// is no daemon at all.
func TestClientErrors(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	if _, err := NewClient(sock).Status(context.Background()); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), sock) {
		t.Fatalf("no daemon: %v", err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/lookup":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"route: no node has that name","code":"unknown_name"}`))
		case "/v1/send":
			w.Write([]byte("{\"progress\":{\"confirmed\":5,\"total\":10}}\n{\"error\":{\"error\":\"mesh: no route\",\"code\":\"no_route\"}}\n"))
		default:
			w.WriteHeader(http.StatusTeapot)
			w.Write([]byte("not json"))
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	c := NewClient(sock)
	_, err = c.Lookup(context.Background(), "nobody")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "unknown_name" || ae.Status != 404 || ae.Error() != "route: no node has that name" {
		t.Fatalf("lookup: %#v", err)
	}
	var prog []SendProgress
	_, err = c.Send(context.Background(), "x", "files", strings.NewReader("0123456789"), 10, func(p SendProgress) { prog = append(prog, p) })
	if !errors.As(err, &ae) || ae.Code != "no_route" || len(prog) != 1 || prog[0].Confirmed != 5 {
		t.Fatalf("send: %v, progress %v", err, prog)
	}
	if _, err := c.Peers(context.Background()); !errors.As(err, &ae) || ae.Status != http.StatusTeapot {
		t.Fatalf("a non-JSON error: %v", err)
	}
}
