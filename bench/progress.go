package bench

import (
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows one bar per phase on w; with a nil w it does nothing.
type progress struct {
	w   io.Writer
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

// phase starts a new bar counting to max (0: a spinner without an end).
func (p *progress) phase(desc string, max int64) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked()
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionThrottle(200 * time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionUseANSICodes(true),
	}
	if max > 0 { // counted: deliveries or endpoints, with their rate
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("done"))
	} else {
		max = -1 // a spinner
	}
	p.bar = progressbar.NewOptions64(max, opts...)
}

func (p *progress) describe(desc string) {
	p.onBar(func(b *progressbar.ProgressBar) { b.Describe(desc) })
}

func (p *progress) set(n int64) { p.onBar(func(b *progressbar.ProgressBar) { _ = b.Set64(n) }) }

// onBar runs f on the current bar, if any.
func (p *progress) onBar(f func(*progressbar.ProgressBar)) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		f(p.bar)
	}
}

// done ends the last bar.
func (p *progress) done() {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked()
}

// finishLocked ends the current bar, if any; p.mu is held.
func (p *progress) finishLocked() {
	if p.bar != nil {
		_ = p.bar.Finish()
		_, _ = io.WriteString(p.w, "\n")
		p.bar = nil
	}
}
