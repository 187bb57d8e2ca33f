package main

import (
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Every package says what it owns in a doc.go, and only there, so that the package comment is
// where a reader looks first (../shared/STYLE.md, "Naming").
func TestEveryPackageHasADocGo(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("go", "list", "-find", "-json", "./...") // -find: no dependencies needed
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath, Name, Dir, Doc string
			GoFiles                    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(p.GoFiles, "doc.go") {
			t.Errorf("%s has no doc.go", p.ImportPath)
			continue
		}
		want := "Package " + p.Name + " "
		if p.Name == "main" {
			want = "Command " + filepath.Base(p.Dir) + " "
		}
		if !strings.HasPrefix(p.Doc, want) {
			t.Errorf("%s: package comment %q does not start %q", p.ImportPath, p.Doc, want)
		}
		for _, f := range p.GoFiles {
			if f == "doc.go" {
				continue
			}
			file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if file.Doc != nil {
				t.Errorf("%s: %s has a package comment too; it belongs in doc.go", p.ImportPath, f)
			}
		}
	}
}
