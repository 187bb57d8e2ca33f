package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/eventtypes"
	"github.com/quaycast/quaycast/subjects"
)

// EventTypeInput is a custom event type: a machine name (a subject token), a display name, a
// group (new or existing) and what triggers it.
type EventTypeInput struct {
	Name        string `json:"name"`
	Title       string `json:"title"`
	Group       string `json:"group"`
	Description string `json:"description"`
}

// Catalogue is the event catalogue as this gateway knows it: open to every caller, like the
// catalogue that is built in.
func (s *Service) Catalogue() *subjects.Catalogue { return s.types().Current() }

// CreateEventType adds a custom event type, stored in NATS for every gateway, usable at once in
// selectors and events. A name that is built in or taken is a conflict.
func (s *Service) CreateEventType(ctx context.Context, c Caller, in EventTypeInput) (subjects.EventType, error) {
	if err := s.Check(c, OpCreateEventType); err != nil {
		return subjects.EventType{}, err
	}
	if s.d.Types == nil {
		return subjects.EventType{}, &ConflictError{Reason: "this gateway has no custom event types"}
	}
	t, err := s.d.Types.Create(ctx, subjects.EventType{Name: in.Name, Title: in.Title, Group: in.Group, Description: in.Description})
	switch {
	case errors.Is(err, eventtypes.ErrBuiltin):
		return t, &ConflictError{Reason: fmt.Sprintf("%s is a built-in event type: built-in types cannot be changed", in.Name)}
	case errors.Is(err, eventtypes.ErrExists):
		return t, &ConflictError{Reason: fmt.Sprintf("there is an event type %s already: delete it first to change it", in.Name)}
	case err != nil:
		return t, err
	}
	s.d.Log.Info().Str("type", t.Name).Str("group", t.Group).Msg("custom event type added")
	return t, nil
}

// DeleteEventType removes a custom event type, unless an endpoint still selects it — by name, or
// through a group it is the last type of.
func (s *Service) DeleteEventType(ctx context.Context, c Caller, name string) error {
	if err := s.Check(c, OpDeleteEventType); err != nil {
		return err
	}
	if s.d.Types == nil {
		return &NotFoundError{Kind: "event type"}
	}
	if _, ok := subjects.Builtin().Lookup(name); ok {
		return &ConflictError{Reason: fmt.Sprintf("%s is a built-in event type: built-in types cannot be deleted", name)}
	}
	cat, err := s.d.Types.Refresh(ctx)
	if err != nil {
		return err
	}
	t, ok := cat.Lookup(name)
	if !ok {
		return &NotFoundError{Kind: "event type"}
	}
	lastOfGroup := len(cat.GroupTypes(t.Group)) == 1
	eps, err := s.d.Registry.List(ctx)
	if err != nil {
		return err
	}
	for _, ep := range eps {
		for _, sel := range ep.EventTypes {
			what := sel[strings.LastIndex(sel, ":")+1:] // the type or group, past a source and "group:"
			byGroup := sel == subjects.GroupPrefix+what || strings.HasSuffix(sel, subjects.SourceSep+subjects.GroupPrefix+what)
			if !byGroup && what == name || byGroup && lastOfGroup && what == t.Group {
				return &ConflictError{Reason: fmt.Sprintf("endpoint %s selects %s (%q): change its event_types first", ep.ID, name, sel)}
			}
		}
	}
	if err := s.d.Types.Delete(ctx, name); err != nil {
		return notFound(err, "event type", eventtypes.ErrNotFound)
	}
	s.d.Log.Info().Str("type", name).Msg("custom event type deleted")
	return nil
}

// types is the live catalogue, or the built-in one when the service has none.
func (s *Service) types() consumer.Catalogue {
	if s.d.Types == nil {
		return builtinTypes{}
	}
	return s.d.Types
}

type builtinTypes struct{}

func (builtinTypes) Current() *subjects.Catalogue { return subjects.Builtin() }
func (builtinTypes) Refresh(context.Context) (*subjects.Catalogue, error) {
	return subjects.Builtin(), nil
}
