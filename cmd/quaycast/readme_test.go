package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/quaycast/quaycast/config"
)

// The README's set-up says, beside the command, that the first run is silent for minutes while
// Go downloads and compiles, and how long it took here: a new user otherwise thinks it hangs.
func TestREADMESetUpSaysTheFirstRunCompiles(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	start := strings.Index(readme, "## Set-up")
	end := strings.Index(readme, "## Quickstart")
	if start < 0 || end < start {
		t.Fatal("README has no Set-up section before the Quickstart")
	}
	setup := readme[start:end]
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(setup)
	if block == nil || !strings.Contains(block[1], "go run ./cmd/quaycast serve") {
		t.Fatalf("the Set-up section has no sh block with `go run ./cmd/quaycast serve`:\n%s", setup)
	}
	if !regexp.MustCompile(`#.*first run.*(downloads|compiles)`).MatchString(block[1]) {
		t.Errorf("no comment beside the set-up commands that the first run downloads and compiles:\n%s", block[1])
	}
	prose := strings.Join(strings.Fields(setup), " ")
	if !regexp.MustCompile(`about \d+ minutes .* measured`).MatchString(prose) {
		t.Errorf("the Set-up section gives no measured time for the first build:\n%s", setup)
	}
	if !strings.Contains(readme, "## Quickstart (two minutes, once the first build is done)") {
		t.Error("the Quickstart's two minutes do not say they start from a warm cache")
	}
}

// readme returns the README's text.
func readme(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// commandFlags returns the flags of every command of the CLI by name, as --help shows them (the
// defaults interpolated from config.Vars).
func commandFlags(t *testing.T) (serve map[string]*kong.Flag, all map[string][]*kong.Flag) {
	t.Helper()
	parser, err := newParser(&cli{})
	if err != nil {
		t.Fatal(err)
	}
	serve, all = map[string]*kong.Flag{}, map[string][]*kong.Flag{}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			if f.Name == "help" {
				continue
			}
			all[f.Name] = append(all[f.Name], f)
			if n.Name == "serve" {
				serve[f.Name] = f
			}
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(parser.Model.Node)
	if len(serve) == 0 {
		t.Fatal("no flags found under the serve command")
	}
	return serve, all
}

var codeSpan = regexp.MustCompile("`([^`]*)`")

// The README's flag table is where operators look a setting up: every flag of `quaycast serve` has
// a row, with its environment variables and the default --help shows, so that a default written
// there differently from the code (config.Vars, from package defaults) fails here.
func TestREADMEFlagTableMatchesServe(t *testing.T) {
	t.Parallel()
	text := readme(t)
	start := strings.Index(text, "\n## Flags\n")
	if start < 0 {
		t.Fatal("README has no ## Flags section")
	}
	section := text[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	serve, _ := commandFlags(t)
	seen := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) != 4 {
			t.Errorf("row with %d cells, want flag | env | default | what: %s", len(cells), line)
			continue
		}
		var flags []*kong.Flag
		for _, m := range regexp.MustCompile("`--([a-z-]+)`").FindAllStringSubmatch(cells[0], -1) {
			f := serve[m[1]]
			switch {
			case f == nil:
				t.Errorf("README row for --%s, which serve does not have", m[1])
			case seen[m[1]]:
				t.Errorf("--%s has two rows", m[1])
			default:
				seen[m[1]] = true
				flags = append(flags, f)
			}
		}
		if len(flags) == 0 {
			continue
		}
		checkEnvCell(t, flags, cells[1])
		checkDefaultCell(t, flags, cells[2])
	}
	for name := range serve {
		if !seen[name] {
			t.Errorf("--%s has no row in the README's flag table", name)
		}
	}
}

// checkEnvCell holds a row's env cell to its flags' variables: one code span per flag, in order;
// a span ending in "..." stands for the rest when each of their variables starts with it, and a
// plain "..." after the spans for flags not spelt out.
func checkEnvCell(t *testing.T, flags []*kong.Flag, cell string) {
	t.Helper()
	spans := codeSpan.FindAllStringSubmatch(cell, -1)
	for i, f := range flags {
		if i >= len(spans) {
			if !strings.HasSuffix(cell, "...") {
				t.Errorf("--%s: no environment variable in %q", f.Name, cell)
			}
			return
		}
		if prefix, ok := strings.CutSuffix(spans[i][1], "..."); ok {
			for _, g := range flags[i:] {
				if !slices.ContainsFunc(g.Tag.Envs, func(e string) bool { return strings.HasPrefix(e, prefix) }) {
					t.Errorf("--%s: its variable %v does not start with %q", g.Name, g.Tag.Envs, prefix)
				}
			}
			return
		}
		if !slices.Contains(f.Tag.Envs, spans[i][1]) {
			t.Errorf("--%s: README says %s, the flag reads %v", f.Name, spans[i][1], f.Tag.Envs)
		}
	}
}

// checkDefaultCell holds a row's default cell to what --help shows: a cell starting with a code
// span gives one default per flag, in order; an empty cell, or words, say the flags have none.
func checkDefaultCell(t *testing.T, flags []*kong.Flag, cell string) {
	t.Helper()
	if !strings.HasPrefix(cell, "`") {
		for _, f := range flags {
			if f.Default != "" {
				t.Errorf("--%s: README gives no default (%q), --help shows %q", f.Name, cell, f.Default)
			}
		}
		return
	}
	spans := codeSpan.FindAllStringSubmatch(cell, -1)
	if len(spans) != len(flags) {
		t.Errorf("%d defaults in %q for %d flags", len(spans), cell, len(flags))
		return
	}
	for i, f := range flags {
		got := spans[i][1]
		if got != f.Default && !(f.Default == "" && f.IsBool() && got == "false") {
			t.Errorf("--%s: README default %q, --help shows %q", f.Name, got, f.Default)
		}
	}
}

// The README's prose names defaults too ("`--retry-schedule` (default 5s, 30s, ...)", "7 days",
// "64 KiB"): each must be the value a command's flag of that name defaults to, and words ("no
// limit") only stand for a zero.
func TestREADMEProseDefaultsMatchTheFlags(t *testing.T) {
	t.Parallel()
	_, all := commandFlags(t)
	mention := regexp.MustCompile("`--([a-z-]+)`(?:[^()|]{0,40}\\(|, )default:? ([^);|]+)")
	matches := mention.FindAllStringSubmatch(readme(t), -1)
	checked := 0
	for _, m := range matches {
		name, said := m[1], strings.TrimSpace(m[2])
		flags := all[name]
		if flags == nil {
			continue // another program's flag, such as the example receiver's
		}
		var defaults []string
		for _, f := range flags {
			if f.Default != "" {
				defaults = append(defaults, f.Default)
			}
		}
		slices.Sort(defaults)
		defaults = slices.Compact(defaults) // --api is on every client command
		checked++
		if !slices.ContainsFunc(defaults, func(d string) bool { return sameDefault(said, d) }) {
			t.Errorf("README: `--%s` ... default %s; the flag's default is %q", name, said, defaults)
		}
	}
	if checked < 5 {
		t.Errorf("found %d default mentions of quaycast flags in the README, want at least 5: is the pattern still right?", checked)
	}
}

// sameDefault reports whether prose (what the README says) is the flag default def: the same code
// span, the same durations (the leading ones of a list; "7 days", "2 min", "24 h" read as such),
// the same size ("64 KiB"), or words for a zero.
func sameDefault(prose, def string) bool {
	if m := codeSpan.FindStringSubmatch(prose); m != nil && strings.HasPrefix(prose, "`") {
		return m[1] == def
	}
	if prose == "" || prose[0] < '0' || prose[0] > '9' {
		return def == "0" || def == "0s"
	}
	if want, ok := durations(def); ok {
		got, _ := durations(prose)
		return len(got) >= len(want) && slices.Equal(got[:len(want)], want)
	}
	var want, got config.ByteSize
	if want.UnmarshalText([]byte(def)) != nil {
		return prose == def
	}
	first, _, _ := strings.Cut(prose, ",")
	return got.UnmarshalText([]byte(first)) == nil && got == want
}

// durations parses the leading durations of a comma-separated list, as Go or as prose ("7 days").
func durations(s string) ([]time.Duration, bool) {
	var out []time.Duration
	for _, item := range strings.Split(s, ",") {
		item = strings.ReplaceAll(strings.TrimSpace(item), " ", "")
		if n, ok := strings.CutSuffix(strings.TrimSuffix(item, "s"), "day"); ok {
			item = n + "x" // days: no unit of time.ParseDuration
		}
		item = strings.Replace(item, "min", "m", 1)
		if n, ok := strings.CutSuffix(item, "x"); ok {
			d, err := time.ParseDuration(n + "h")
			if err != nil {
				break
			}
			out = append(out, 24*d)
			continue
		}
		d, err := time.ParseDuration(item)
		if err != nil {
			break
		}
		out = append(out, d)
	}
	return out, len(out) > 0
}
