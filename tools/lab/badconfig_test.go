package lab

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Every way a node can fail to start ends the same: exit status 1 and one
// line on standard error naming the problem, within seconds.
func TestBadConfig(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	addrs, err := FreeUDP(2)
	if err != nil {
		t.Fatal(err)
	}
	base, err := Init(bin, filepath.Join(dir, "base"), "base", addrs[0], []string{addrs[1]})
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(base.Config())
	if err != nil {
		t.Fatal(err)
	}
	// A UDP port someone else holds.
	busy, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	for _, tc := range []struct {
		name  string
		edit  func(cfg string) string
		setup func(dir string)
		want  string // in the one line
	}{
		{"unknown key", func(c string) string { return strings.Replace(c, "[node]\n", "[node]\ncolour = \"blue\"\n", 1) }, nil, `"node.colour"`},
		{"unknown section", func(c string) string { return strings.Replace(c, "[node]\n", "[radio]\npower = 3\n[node]\n", 1) }, nil, `"radio`},
		{"key of another link type", func(c string) string {
			return strings.Replace(c, "type = \"udp\"\n", "type = \"udp\"\nchannel = 6\n", 1)
		}, nil, `"channel"`},
		{"unknown link type", func(c string) string { return strings.Replace(c, "type = \"udp\"", "type = \"zigbee\"", 1) }, nil, `"zigbee"`},
		{"value out of range", func(c string) string { return strings.Replace(c, "# trees = 6", "trees = 40", 1) }, nil, "routing.trees"},
		{"wrong type", func(c string) string { return strings.Replace(c, "# trees = 6", `trees = "six"`, 1) }, nil, "routing.trees"},
		{"bad duration", func(c string) string {
			return strings.Replace(c, `# claim_period = "20s"`, `claim_period = "often"`, 1)
		}, nil, "claim_period"},
		{"bad name", func(c string) string { return strings.Replace(c, `name = "base"`, `name = "Not A Name"`, 1) }, nil, "node.name"},
		{"not toml", func(c string) string { return c + "\n[[[\n" }, nil, "mycelium.toml"},
		{"no link", func(c string) string { return c[:strings.Index(c, "[[link]]")] }, nil, "no [[link]]"},
		{"missing identity", nil, func(d string) { os.Remove(filepath.Join(d, "identity.pem")) }, "identity.pem: no such file"},
		{"identity readable by others", nil, func(d string) { os.Chmod(filepath.Join(d, "identity.pem"), 0o644) }, "permissions"},
		{"interface does not exist", func(c string) string {
			return c + "\n[[link]]\ntype = \"espnow\"\ninterface = \"nosuchwlan7\"\nchannel = 1\n"
		}, nil, `"nosuchwlan7" does not exist`},
		{"port in use", func(c string) string { return strings.Replace(c, addrs[0], busy.LocalAddr().String(), 1) }, nil, "address already in use"},
		{"serial port does not exist", func(c string) string {
			return c + "\n[[link]]\ntype = \"rylr998\"\nport = \"/dev/nonexistent-tty\"\naddress = 2\n"
		}, nil, "/dev/nonexistent-tty"},
		{"metrics address in use", func(c string) string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return strings.Replace(c, `listen = ""`, `listen = "`+l.Addr().String()+`"`, 1)
		}, nil, "metrics.listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			key, _ := os.ReadFile(filepath.Join(base.Dir, "identity.pem"))
			if err := os.WriteFile(filepath.Join(d, "identity.pem"), key, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := string(good)
			if tc.edit != nil {
				cfg = tc.edit(cfg)
			}
			if err := os.WriteFile(filepath.Join(d, "mycelium.toml"), []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(d)
			}
			code, stderr := runNode(t, bin, filepath.Join(d, "mycelium.toml"))
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "mycelium: ") {
				t.Fatalf("stderr is not one line:\n%s", stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr %q does not name %q", stderr, tc.want)
			}
			if _, err := os.Stat(filepath.Join(d, "mycelium.sock")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a failed start left its socket behind: %v", err)
			}
		})
	}

	t.Run("config file missing", func(t *testing.T) {
		code, stderr := runNode(t, bin, filepath.Join(dir, "nowhere.toml"))
		if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "nowhere.toml") {
			t.Fatalf("exit %d: %q", code, stderr)
		}
	})
	t.Run("init refuses to overwrite", func(t *testing.T) {
		before, _ := os.ReadFile(base.Config())
		out, err := exec.Command(bin, "init", "--dir", base.Dir, "--name", "other").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || strings.Count(string(out), "\n") != 1 || !strings.Contains(string(out), "exists") {
			t.Fatalf("init over an existing node: %v %q", err, out)
		}
		after, _ := os.ReadFile(base.Config())
		if string(before) != string(after) {
			t.Fatal("init changed the existing configuration")
		}
	})
}

// runNode runs `mycelium node --config path`, which must exit on its own.
func runNode(t *testing.T, bin, path string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, "node", "--config", path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stderr.String()
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("still running after 20 s; stderr:\n%s", stderr.String())
		return 0, ""
	}
}
