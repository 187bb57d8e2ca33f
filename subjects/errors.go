package subjects

// FieldError is a validation error that names the offending field: a JSON
// field of the envelope ("id", "type", ...), "body" for the message as a whole,
// "source"/"type" for subject tokens, or "event_types" / "event_types[i]" for
// subscription selectors. The API turns it into a 400 naming the field.
type FieldError struct {
	Field  string
	Reason string
}

// Error returns "<field>: <reason>", e.g. `type: unknown event type "foo"`.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}
