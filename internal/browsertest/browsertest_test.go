package browsertest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/quaycast/quaycast/internal/browsertest"
)

// The browser New starts opens a file and runs its script: what a test of a page needs.
func TestNewOpensAPage(t *testing.T) {
	t.Parallel()
	page := filepath.Join(t.TempDir(), "page.html")
	if err := os.WriteFile(page, []byte(`<!doctype html><title>t</title><p id="p">drawn</p><script>document.getElementById("p").textContent += " by the browser"</script>`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+page)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("p").textContent`))
	if err != nil || got != "drawn by the browser" {
		t.Errorf("page text %q (%v), want the script's change", got, err)
	}
}

// Without the browser, a test is skipped — or fails in CI.
func TestPathIsEmptyWithoutTheBrowser(t *testing.T) {
	t.Setenv("CHROME_PATH", filepath.Join(t.TempDir(), "no-chromium"))
	if p := browsertest.Path(); p != "" {
		t.Errorf("Path() = %q for a browser that is not there", p)
	}
}
