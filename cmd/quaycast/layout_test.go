package main

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The module's import graph keeps the layout ../shared/STYLE.md describes: imports point one way,
// the pure packages stay pure, and the delivery engine knows nothing of HTTP.
func TestImportsKeepTheLayout(t *testing.T) {
	t.Parallel()
	const module = "github.com/quaycast/quaycast/"
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		imports[strings.TrimPrefix(p.ImportPath, module)] = p.Imports
	}
	testHelpers := []string{"internal/testwait", "internal/testtool", "internal/browsertest", "gateway/gatewaytest", "gateway/tlstest", "consumer/natstest"}
	stdlib := func(imp string) bool { return !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") }
	ours := func(imp string) (string, bool) { return strings.CutPrefix(imp, module) }
	leaf := func(p string) bool { // one of ours that imports the standard library only
		return !slices.ContainsFunc(imports[p], func(imp string) bool { return !stdlib(imp) })
	}
	// The JetStream-backed records that are not delivery sit below the delivery engine and every
	// front end: they store and read, and know nothing of who calls them.
	recordsBad := func(imp string) bool {
		p, q := ours(imp)
		return imp == "net/http" || strings.HasPrefix(imp, "net/http/") ||
			q && (p == "consumer" || strings.HasPrefix(p, "consumer/") || p == "service" || p == "gateway" || p == "config" || strings.HasPrefix(p, "bench"))
	}
	rules := []struct {
		pkg    string
		reason string
		bad    func(imp string) bool
	}{
		{"subjects", "what an event is: the standard library and leaf packages only", func(imp string) bool { p, q := ours(imp); return !stdlib(imp) && !(q && leaf(p)) }},
		{"gateway/signature", "the signing schemes: the standard library only", func(imp string) bool { return !stdlib(imp) }},
		{"seal", "the secret key: the standard library only", func(imp string) bool { return !stdlib(imp) }},
		{"internal/fielderr", "the one validation error, a leaf for every package: the standard library only", func(imp string) bool { return !stdlib(imp) }},
		{"internal/backoff", "waits between retries, for every package: the standard library only", func(imp string) bool { return !stdlib(imp) }},
		{"internal/testwait", "polling in tests: the standard library only", func(imp string) bool { return !stdlib(imp) }},
		{"internal/testtool", "a missing tool in tests: the standard library only", func(imp string) bool { return !stdlib(imp) }},
		{"internal/defaults", "the settings' defaults, read by config, consumer and gateway: the standard library only", func(imp string) bool { return !stdlib(imp) }},
		{"config", "nothing from quaycast but leaf packages", func(imp string) bool { p, q := ours(imp); return q && !leaf(p) }},
		{"consumer", "the delivery engine: no HTTP, no gateway, config, natsauth or bench", func(imp string) bool {
			p, q := ours(imp)
			return imp == "net/http" || q && (p == "gateway" || p == "config" || p == "natsauth" || strings.HasPrefix(p, "bench"))
		}},
		{"tokens", "a store of records, not delivery: no HTTP, no consumer, service, gateway, config or bench", recordsBad},
		{"portal", "a store of records, not delivery: no HTTP, no consumer, service, gateway, config or bench", recordsBad},
		{"attempts", "a store of records, not delivery: no HTTP, no consumer, service, gateway, config or bench", recordsBad},
		{"cluster", "membership and ownership over NATS: it drives the delivery engine through an interface, so no HTTP, consumer, service, gateway, config or bench", recordsBad},
		{"natsauth", "who may do what on NATS: no HTTP, no gateway or bench", func(imp string) bool {
			p, q := ours(imp)
			return imp == "net/http" || q && (p == "gateway" || strings.HasPrefix(p, "bench"))
		}},
		{"service", "what an operator can do, for every front end: no HTTP, no gateway, config or bench", func(imp string) bool {
			p, q := ours(imp)
			return imp == "net/http" || strings.HasPrefix(imp, "net/http/") || q && (p == "gateway" || p == "config" || strings.HasPrefix(p, "bench"))
		}},
		{"bench", "drives the gateway as a black box: not consumer", func(imp string) bool { p, q := ours(imp); return q && p == "consumer" }},
	}
	for _, r := range rules {
		if _, ok := imports[r.pkg]; !ok {
			t.Errorf("package %s not found: update this test", r.pkg)
		}
		for _, imp := range imports[r.pkg] {
			if r.bad(imp) {
				t.Errorf("%s imports %s (%s)", r.pkg, imp, r.reason)
			}
		}
	}
	for pkg, imps := range imports {
		for _, imp := range imps {
			p, q := ours(imp)
			if q && strings.HasPrefix(p, "bench") && !strings.HasPrefix(pkg, "cmd/") {
				t.Errorf("%s imports %s: only cmd may use the bench harness", pkg, imp)
			}
			if q && slices.Contains(testHelpers, p) && !slices.Contains(testHelpers, pkg) { // helpers build on helpers
				t.Errorf("%s imports %s outside its tests: it is a test helper", pkg, imp)
			}
		}
	}
}

// No file of the module keeps a merge's conflict markers: a README that kept both sides of a
// merge read as two contradicting designs, and no compiler catches it outside Go.
func TestNoConflictMarkers(t *testing.T) {
	marker := regexp.MustCompile(`(?m)^(<{7} |={7}$|>{7} )`)
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "../.." && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".html", ".json", ".yml", ".yaml", ".conf", ".tmpl", ".sh", ".py", ".css", ".js":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if loc := marker.FindIndex(b); loc != nil {
			t.Errorf("%s:%d: a merge's conflict marker", path, 1+strings.Count(string(b[:loc[0]]), "\n"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
