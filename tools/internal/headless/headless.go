// Package headless starts a headless Chromium for the tools' browser tests
// (chromedp over the DevTools protocol) and collects what the page
// reports: console errors, uncaught exceptions, failed loads.
package headless

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// EnvRequire names the variable that makes a missing Chromium a test
// failure instead of a skip: .ci/run sets it, since CI installs chromium.
const EnvRequire = "MYCELIUM_REQUIRE_CHROMIUM"

// Path finds Chromium (Debian's chromium package, or Chrome).
func Path() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no chromium, chromium-browser or google-chrome on PATH")
}

// Browser is one headless Chromium and the problems its pages reported.
type Browser struct {
	// Ctx runs chromedp actions in the browser's tab.
	Ctx context.Context

	mu       sync.Mutex
	problems []string
}

// Start launches Chromium for t (stopped when t ends). Without Chromium
// the test is skipped, saying so, unless EnvRequire is set: then it fails.
func Start(t *testing.T, width, height int) *Browser {
	t.Helper()
	path, err := Path()
	if err != nil {
		if os.Getenv(EnvRequire) != "" {
			t.Fatalf("%v, but %s is set (CI installs chromium): the browser test cannot run", err, EnvRequire)
		}
		t.Skipf("%v: the browser test is NOT run (apt-get install chromium; CI sets %s and fails instead)", err, EnvRequire)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(width, height), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	b := &Browser{Ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				b.report(fmt.Sprintf("console.%s: %v", ev.Type, args))
			}
		case *runtime.EventExceptionThrown:
			b.report("exception: " + ev.ExceptionDetails.Error())
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.LevelError {
				b.report(fmt.Sprintf("log: %s (%s)", ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	if err := chromedp.Run(ctx, log.Enable(), runtime.Enable()); err != nil {
		cancelC()
		cancelA()
		t.Fatalf("starting %s: %v", path, err)
	}
	t.Cleanup(func() { cancelC(); cancelA() })
	return b
}

func (b *Browser) report(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, s)
}

// Problems returns the console errors, exceptions and failed loads so far.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}
