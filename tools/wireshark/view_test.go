package wireshark

import (
	"bytes"
	"html/template"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mycelium-mesh/mycelium/tools/internal/headless"
)

// EnvArtifacts names a directory the test writes its picture to (default:
// the test's temporary directory, logged).
const EnvArtifacts = "MYCELIUM_ARTIFACTS"

// viewPage lays tshark's output out as Wireshark's window does: the
// packet list, the selected packet's details, its bytes.
var viewPage = template.Must(template.New("view").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title><link rel="icon" href="data:,">
<style>
body { margin: 0; font: 13px system-ui, sans-serif; background: #ececec; }
.bar { background: #3c3f41; color: #fff; padding: 6px 10px; font-size: 13px; }
.filter { background: #e4f5e4; border: 1px solid #9c9; margin: 6px; padding: 4px 8px; font-family: monospace; }
.pane { background: #fff; margin: 6px; border: 1px solid #bbb; overflow: hidden; }
table { border-collapse: collapse; width: 100%; font: 12px monospace; }
th { background: #f3f3f3; text-align: left; padding: 2px 6px; border-bottom: 1px solid #ccc; }
td { padding: 1px 6px; white-space: nowrap; }
tr.sel td { background: #3875d7; color: #fff; }
tr.myc td { background: #e7f0fd; }
pre { margin: 0; padding: 6px 8px; font: 12px/1.35 monospace; }
.note { margin: 6px; color: #555; font-size: 12px; }
</style></head><body>
<div class="bar">{{.Title}}</div>
<div class="filter">{{.Filter}}</div>
<div class="pane"><table><tr><th>No.</th><th>Time</th><th>Source</th><th>Destination</th><th>Protocol</th><th>Length</th><th>Info</th></tr>
{{range .Rows}}<tr class="{{if .Sel}}sel{{else}}myc{{end}}"><td>{{.No}}</td><td>{{.Time}}</td><td>{{.Src}}</td><td>{{.Dst}}</td><td>{{.Proto}}</td><td>{{.Len}}</td><td>{{.Info}}</td></tr>
{{end}}</table></div>
<div class="pane"><pre id="details">{{.Details}}</pre></div>
<div class="pane"><pre id="bytes">{{.Bytes}}</pre></div>
<div class="note">{{.Note}}</div>
</body></html>
`))

type viewRow struct {
	No, Time, Src, Dst, Proto, Len, Info string
	Sel                                  bool
}

// TestWiresharkView renders what Wireshark shows of a routed Package in a
// capture of the simulator, with our dissector, as a picture: tshark
// prints the packet list, the details and the bytes, and Chromium draws
// them in Wireshark's layout (tshark itself cannot take a screenshot).
func TestWiresharkView(t *testing.T) {
	ts := tshark(t)
	b := headless.Start(t, 1200, 900)
	dir := t.TempDir()
	route := filepath.Join(simCaptures(t), "route.pcap")
	lua := "lua_script:" + script(t)
	run := func(args ...string) string {
		out, err := exec.Command(ts, append([]string{"-n", "-X", lua, "-r", route}, args...)...).Output()
		if err != nil {
			t.Fatalf("tshark %v: %v", args, err)
		}
		return string(out)
	}
	filter := `mycelium.package.app_name == "mycelium-sim route probe" || mycelium.route.type == 0x01`
	var rows []viewRow
	sel := ""
	for _, line := range strings.Split(strings.TrimSpace(run("-Y", filter, "-T", "fields", "-E", "separator=/t",
		"-e", "frame.number", "-e", "frame.time_relative", "-e", "wlan.sa", "-e", "wlan.da", "-e", "_ws.col.Protocol", "-e", "frame.len", "-e", "_ws.col.Info")), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 7 || len(rows) == 14 {
			continue
		}
		r := viewRow{No: f[0], Time: f[1], Src: f[2], Dst: f[3], Proto: f[4], Len: f[5], Info: f[6]}
		if sel == "" && strings.Contains(r.Info, "route probe") {
			sel, r.Sel = r.No, true
		}
		rows = append(rows, r)
	}
	if sel == "" {
		t.Fatal("no route probe in the capture")
	}
	details := run("-Y", "frame.number == "+sel, "-V")
	// Wireshark shows the outer layers collapsed: keep their first line.
	var d strings.Builder
	open := false
	for _, line := range strings.Split(details, "\n") {
		top := line != "" && line[0] != ' '
		if top {
			open = strings.HasPrefix(line, "IEEE 802.11 Wireless Management")
			mark := "▸ "
			if open {
				mark = "▾ "
			}
			d.WriteString(mark + line + "\n")
			continue
		}
		if open {
			d.WriteString("  " + line + "\n")
		}
	}
	for _, want := range []string{"ESP-NOW (Mycelium)", "Mycelium mesh", "Schema: ESP-NOW routed (5)", "Application: mycelium-sim route probe", "Hash good: True", "From coordinates:"} {
		if !strings.Contains(d.String(), want) {
			t.Fatalf("the details lack %q:\n%s", want, d.String())
		}
	}
	version, _ := exec.Command(ts, "--version").Output()
	v, _, _ := strings.Cut(string(version), "\n")
	var page bytes.Buffer
	err := viewPage.Execute(&page, map[string]any{
		"Title":   "route.pcap (mycelium sim route --nodes 10 --trees 2 --pcap) with tools/wireshark/mycelium.lua",
		"Filter":  filter,
		"Rows":    rows,
		"Details": d.String(),
		"Bytes":   run("-Y", "frame.number == "+sel, "-x"),
		"Note":    "Rendered by TestWiresharkView from the output of " + strings.TrimSpace(v) + " (-T fields, -V, -x): tshark cannot take a screenshot, so this is its dissection laid out as Wireshark's window, not a capture of Wireshark itself.",
	})
	if err != nil {
		t.Fatal(err)
	}
	htmlPath := filepath.Join(dir, "view.html")
	if err := os.WriteFile(htmlPath, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var png []byte
	if err := chromedp.Run(b.Ctx, chromedp.Navigate("file://"+htmlPath),
		chromedp.Poll(`document.getElementById('details').textContent.includes('Hash good')`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatal(err)
	}
	out := os.Getenv(EnvArtifacts)
	if out == "" {
		out = dir
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(out, "wireshark.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("picture: %s", path)
	if p := b.Problems(); len(p) > 0 {
		t.Fatalf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
}
