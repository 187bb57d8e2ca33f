package bench

import (
	"encoding/json"
	"maps"
	"regexp"
	"strings"
	"sync"
)

// tail keeps the last lines a child logged, and counts warnings and errors.
type tail struct {
	mu       sync.Mutex
	lines    []string
	warnings int
	errors   int
	distinct map[string]int // level, message and error of warnings and errors -> count
}

func (l *tail) add(line string) {
	var e struct{ Level, Message, Error string }
	if json.Unmarshal([]byte(line), &e) != nil { // not zerolog: the CLI's last word, or a panic
		e.Level, e.Message = "stderr", strings.TrimSpace(line)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e.Level {
	case "warn":
		l.warnings++
	case "error", "fatal", "panic":
		l.errors++
	}
	if e.Level != "" && e.Level != "info" && e.Level != "debug" && e.Level != "trace" {
		if l.distinct == nil {
			l.distinct = map[string]int{}
		}
		k := e.Level + ": " + e.Message
		if e.Error != "" {
			k += ": " + e.Error
		}
		k = idLike.ReplaceAllString(k, "…") // one entry per kind, not per event or endpoint
		if _, ok := l.distinct[k]; ok || len(l.distinct) < 30 {
			l.distinct[k]++
		}
	}
	l.lines = append(l.lines, line)
	if len(l.lines) > 200 {
		l.lines = l.lines[len(l.lines)-100:]
	}
}

func (l *tail) String() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *tail) counts() (warnings, errors int, distinct map[string]int) {
	if l == nil {
		return 0, 0, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.warnings, l.errors, maps.Clone(l.distinct)
}

// idLike matches ids, numbers and addresses in log lines.
var idLike = regexp.MustCompile(`ep_[a-z0-9]+|[A-Za-z0-9_.:-]*[0-9][A-Za-z0-9_.:-]*`)
