package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mycelium-mesh/mycelium/tools/cli"
	"github.com/mycelium-mesh/mycelium/tools/internal/headless"
	"github.com/mycelium-mesh/mycelium/tools/lab"
)

// EnvArtifacts names a directory the browser tests write their
// screenshots to (default: the test's temporary directory, logged).
const EnvArtifacts = "MYCELIUM_ARTIFACTS"

func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(EnvArtifacts)
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot saves the whole page as name in dir.
func screenshot(t *testing.T, b *headless.Browser, dir, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// waitFor polls a JavaScript condition on the page.
func waitFor(t *testing.T, b *headless.Browser, what, cond string, d time.Duration) {
	t.Helper()
	var ok bool
	if err := chromedp.Run(b.Ctx, chromedp.Poll(cond, &ok, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil || !ok {
		var body string
		_ = chromedp.Run(b.Ctx, chromedp.Text("main", &body, chromedp.ByQuery))
		t.Fatalf("the page never showed %s (%v); it shows:\n%s", what, err, body)
	}
}

// TestDashboardInBrowser serves the dashboard from a real `mycelium node`
// process and drives headless Chromium through it: the page loads with no
// console error, names the node and counts its peers, updates by itself
// when a second node appears, and the ping form draws the path to it.
func TestDashboardInBrowser(t *testing.T) {
	b := headless.Start(t, 1400, 1000)
	out := artifacts(t)
	bin, err := lab.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addrs, err := lab.FreeUDP(2)
	if err != nil {
		t.Fatal(err)
	}
	alpha, err := lab.Init(bin, filepath.Join(dir, "alpha"), "alpha", addrs[0], []string{addrs[1]})
	if err != nil {
		t.Fatal(err)
	}
	bravo, err := lab.Init(bin, filepath.Join(dir, "bravo"), "bravo", addrs[1], []string{addrs[0]})
	if err != nil {
		t.Fatal(err)
	}
	web, err := lab.FreeTCP()
	if err != nil {
		t.Fatal(err)
	}
	edits := maps.Clone(lab.FastTiming)
	edits["metrics.listen"] = `"` + web + `"`
	edits["metrics.dashboard"] = "true"
	if err := alpha.Set(edits); err != nil {
		t.Fatal(err)
	}
	if err := bravo.Set(lab.FastTiming); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range []*lab.Node{alpha, bravo} {
			n.Kill()
			if t.Failed() {
				t.Logf("%s's log:\n%s", n.Name, n.Stderr())
			}
		}
	})
	if err := alpha.Start(); err != nil {
		t.Fatal(err)
	}
	url := "http://" + web + "/"
	up := lab.Poll(context.Background(), 30*time.Second, 50*time.Millisecond, func(ctx context.Context) bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !up {
		t.Fatalf("the dashboard never answered at %s", url)
	}

	if err := chromedp.Run(b.Ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	// Alone: its name, and no peer.
	waitFor(t, b, "the node's name", `document.getElementById('node-name').textContent === 'alpha'`, 20*time.Second)
	waitFor(t, b, "0 peers", `document.getElementById('peer-count').textContent === '0' && document.getElementById('conn').textContent === 'live'`, 20*time.Second)

	// A peer appears: the page updates without a reload.
	if err := bravo.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "1 peer, bravo, in the table", `document.getElementById('peer-count').textContent === '1' &&
		document.querySelector('#peers tbody').textContent.includes('bravo')`, 60*time.Second)
	// The trees converge (6 trees, each drawn) and the mesh graph shows the peer.
	waitFor(t, b, "six trees drawn", `document.querySelectorAll('#trees figure.tree').length === 6 &&
		document.querySelectorAll('#mesh-graph g.peer').length === 1`, 60*time.Second)
	waitFor(t, b, "a traffic chart with data", `document.querySelectorAll('#charts svg polyline').length > 0`, 20*time.Second)
	screenshot(t, b, out, "dashboard.png")

	// The ping form: bravo answers, and the path is drawn. The name may
	// not be registered yet on a cold start: the form is tried again.
	ok := false
	for try := 0; try < 10 && !ok; try++ {
		var status string
		err := chromedp.Run(b.Ctx,
			chromedp.SetValue("#ping-target", "bravo", chromedp.ByID),
			chromedp.Click("#ping-button", chromedp.ByID),
			chromedp.Poll(`!document.getElementById('ping-button').disabled && document.getElementById('ping-status').textContent !== ''`, nil,
				chromedp.WithPollingTimeout(90*time.Second)),
			chromedp.Text("#ping-status", &status, chromedp.ByID),
		)
		if err != nil {
			t.Fatal(err)
		}
		ok = strings.Contains(status, "echo in")
		if !ok {
			t.Logf("ping form, try %d: %s", try+1, status)
		}
	}
	if !ok {
		t.Fatal("the ping form never got an echo from bravo")
	}
	waitFor(t, b, "the path alpha → bravo drawn", `document.querySelectorAll('#path-graph g.hop').length === 2 &&
		document.getElementById('path-graph').textContent.includes('bravo')`, 5*time.Second)
	screenshot(t, b, out, "dashboard-ping.png")

	if p := b.Problems(); len(p) > 0 {
		t.Fatalf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestRoutePageInBrowser writes the simulator's page (`mycelium sim route
// --html`) and opens it in headless Chromium: no console error, every node
// drawn, each tree a spanning tree over them, a sampled route drawn hop by
// hop, and a histogram holding every delivered route's stretch.
func TestRoutePageInBrowser(t *testing.T) {
	b := headless.Start(t, 1300, 1000)
	out := artifacts(t)
	page := filepath.Join(t.TempDir(), "mesh.html")
	var stdout, stderr strings.Builder
	if st := cli.Run([]string{"sim", "route", "--nodes", "40", "--pairs", "40", "--html", page, "--progress", "never", "--json"}, strings.NewReader(""), &stdout, &stderr); st != 0 {
		t.Fatalf("sim route: %d %s", st, stderr.String())
	}
	var res struct {
		Nodes, Delivered, Trees int
	}
	if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(b.Ctx, chromedp.Navigate("file://"+page)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "every node", fmt.Sprintf(`document.querySelectorAll('#mesh-graph circle').length === %d`, res.Nodes), 10*time.Second)
	for k := range res.Trees {
		if err := chromedp.Run(b.Ctx, chromedp.SetValue("#tree-select", strconv.Itoa(k), chromedp.ByID),
			chromedp.Evaluate(`document.getElementById('tree-select').dispatchEvent(new Event('change'))`, nil)); err != nil {
			t.Fatal(err)
		}
		// A spanning tree: every node but the root has its parent edge.
		waitFor(t, b, fmt.Sprintf("tree %d spanning all %d nodes", k, res.Nodes),
			fmt.Sprintf(`document.querySelectorAll('#mesh-graph line.tree-edge').length === %d && document.querySelectorAll('#mesh-graph g.root').length === 1`, res.Nodes-1), 5*time.Second)
	}
	waitFor(t, b, "the first sampled route, hop by hop", `(() => {
		const r = D.routes[0];
		return r.length >= 2 && document.querySelectorAll('#mesh-graph line.route-edge').length === r.length - 1 &&
			document.querySelectorAll('#mesh-graph g.route-start').length === 1 && document.querySelectorAll('#mesh-graph g.route-end').length === 1;
	})()`, 5*time.Second)
	waitFor(t, b, "the histogram of every delivered route", fmt.Sprintf(`document.querySelectorAll('#histogram rect.bar').length === D.histogram.length &&
		D.histogram.reduce((a, x) => a + x.n, 0) === %d`, res.Delivered), 5*time.Second)
	if err := chromedp.Run(b.Ctx, chromedp.SetValue("#tree-select", "0", chromedp.ByID),
		chromedp.Evaluate(`document.getElementById('tree-select').dispatchEvent(new Event('change'))`, nil)); err != nil {
		t.Fatal(err)
	}
	screenshot(t, b, out, "sim-route.png")
	if p := b.Problems(); len(p) > 0 {
		t.Fatalf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
}
