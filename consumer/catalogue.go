package consumer

import (
	"context"
	"errors"

	"github.com/quaycast/quaycast/subjects"
)

// Catalogue is the live event catalogue (package eventtypes): what an event, a selector or a
// filter may name. A type it does not know may have just been added through another gateway, so
// it is read again (Refresh) before anything is refused for it.
type Catalogue interface {
	Current() *subjects.Catalogue
	Refresh(ctx context.Context) (*subjects.Catalogue, error)
}

// builtinCatalogue is the catalogue without custom types.
type builtinCatalogue struct{}

func (builtinCatalogue) Current() *subjects.Catalogue { return subjects.Builtin() }
func (builtinCatalogue) Refresh(context.Context) (*subjects.Catalogue, error) {
	return subjects.Builtin(), nil
}

// WithCatalogue calls f with the current catalogue and, if it answers an unknown type, once more
// with the catalogue read again. A nil c is the built-in catalogue.
func WithCatalogue[T any](ctx context.Context, c Catalogue, f func(*subjects.Catalogue) (T, error)) (T, error) {
	if c == nil {
		c = builtinCatalogue{}
	}
	v, err := f(c.Current())
	if !errors.Is(err, subjects.ErrUnknownType) {
		return v, err
	}
	cat, rerr := c.Refresh(ctx)
	if rerr != nil {
		return v, err
	}
	return f(cat)
}

// CatalogueChanged asks Run to re-apply every endpoint this gateway runs: a group, or a source's
// "*" beside types of every source, may cover other types now, which changes its consumer's
// filters. It does not block.
func (m *Manager) CatalogueChanged() {
	select {
	case m.catalogueChanged <- struct{}{}:
	default: // one is pending: it will read the newest catalogue
	}
}

// reapply applies again every running or failed endpoint, with the catalogue as it is now.
func (m *Manager) reapply(ctx context.Context) {
	m.mu.Lock()
	eps := make([]*Endpoint, 0, len(m.running)+len(m.failed))
	for _, rw := range m.running {
		eps = append(eps, rw.endpoint())
	}
	for _, ep := range m.failed {
		eps = append(eps, ep)
	}
	m.mu.Unlock()
	for _, ep := range eps {
		m.applyOrRetry(ctx, ep)
	}
}
