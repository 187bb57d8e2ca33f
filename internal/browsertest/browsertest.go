package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/quaycast/quaycast/internal/testtool"
)

// DefaultPath is where Debian's chromium package puts the browser.
const DefaultPath = "/usr/bin/chromium"

// startTimeout bounds Chromium's start, generously: a starved machine is slow, a hung browser
// must still end the test.
const startTimeout = 2 * time.Minute

// Path is the browser a test uses: $CHROME_PATH when set, else DefaultPath; "" when it is not an
// executable there.
func Path() string {
	p := os.Getenv("CHROME_PATH")
	if p == "" {
		p = DefaultPath
	}
	if _, err := exec.LookPath(p); err != nil {
		return ""
	}
	return p
}

// New starts headless Chromium for t and returns the chromedp context that drives it, the
// browser already running: chromedp.Run and chromedp.Do take it, or a context with a timeout
// derived from it. t.Cleanup stops the browser; the browser's output is logged if t failed.
// Without a browser the test is skipped, or fails when CI=true (testtool.Missing). As root,
// Chromium only starts without its sandbox, so it gets --no-sandbox then.
func New(t testing.TB) context.Context {
	t.Helper()
	path := Path()
	if path == "" {
		testtool.Missing(t, "needs Chromium at $CHROME_PATH or "+DefaultPath+" (apt-get install chromium)")
	}
	out := &tail{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.CombinedOutput(out), chromedp.WindowSize(1024, 768))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(out.printf), chromedp.WithErrorf(out.printf))
	t.Cleanup(func() {
		cancel() // closes the browser and waits for it
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium (%s) said:\n%s", path, out)
		}
	})
	// The first Run starts the browser, which lives as long as that Run's context: ctx itself,
	// so the start is bounded here rather than by a timeout on it.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start %s: %v\n%s", path, err, out)
		}
	case <-time.After(startTimeout):
		cancel()
		t.Fatalf("%s did not start within %s\n%s", path, startTimeout, out)
	}
	return ctx
}

// tail keeps the last 8 KiB the browser and chromedp wrote.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 8 << 10

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - tailSize; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

func (w *tail) printf(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
