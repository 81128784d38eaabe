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
	"syscall"
	"testing"
	"time"

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
	// A browser that exits before it listens is tried once more: under a
	// loaded CI machine Chromium has quit at start ("chrome failed to
	// start", its crash handler short of /sys entries) with nothing of
	// ours run yet. A second failure fails the test.
	b, err := launch(t, path, width, height)
	if err != nil {
		t.Logf("starting %s: %v; trying once more", path, err)
		b, err = launch(t, path, width, height)
	}
	if err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return b
}

// launch starts Chromium at path and registers its stop with t; on error
// everything it started is stopped again.
func launch(t *testing.T, path string, width, height int) (*Browser, error) {
	t.Helper()
	// The profile directory is ours to remove, not t.TempDir's: Chromium's
	// helpers (zygote, renderers, crashpad) outlive the browser process by
	// a moment and write into it, so a single RemoveAll at the end of the
	// test raced them and failed CI with "directory not empty".
	profile, err := os.MkdirTemp("", "mycelium-chromium-")
	if err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(width, height), chromedp.UserDataDir(profile),
		// A process group of its own, so the cleanup can stop every
		// helper Chromium started, not only the browser.
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		}))
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
	stop := func() {
		var pid int
		if c := chromedp.FromContext(ctx); c != nil && c.Browser != nil && c.Browser.Process() != nil {
			pid = c.Browser.Process().Pid
		}
		cancelC()
		if pid > 0 {
			// The browser leads its group (Setpgid): kill every member.
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
		cancelA()
		removeProfile(t, profile)
	}
	if err := chromedp.Run(ctx, log.Enable(), runtime.Enable()); err != nil {
		stop()
		return nil, err
	}
	t.Cleanup(stop)
	return b, nil
}

// removeProfile removes Chromium's profile directory once its last writer
// is gone. Killed processes exit asynchronously, so a removal can meet a
// file written a moment before: retry for up to two seconds, then leave
// the directory (a leftover under /tmp is logged, it is not the behaviour
// under test).
func removeProfile(t *testing.T, dir string) {
	var err error
	for deadline := time.Now().Add(2 * time.Second); ; {
		if err = os.RemoveAll(dir); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Logf("leaving Chromium's profile %s: %v", dir, err)
	}
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
