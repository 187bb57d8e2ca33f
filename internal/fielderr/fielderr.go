package fielderr

// Error is a validation error that names the offending field: a JSON field of a request or of an
// event envelope ("url", "event_types[2]", "body" for the message as a whole), or a command-line
// flag or setting (Flag set; "data-dir"). The API turns it into a 400 naming the field; the
// command line exits with a usage error.
type Error struct {
	Field  string
	Reason string
	Flag   bool // Field is a flag's name, without its dashes
}

// Flag returns the error for the command-line flag (or its QUAYCAST_* setting) name.
func Flag(name, reason string) *Error { return &Error{Field: name, Reason: reason, Flag: true} }

// Error returns "<field>: <reason>", e.g. `type: unknown event type "foo"`, and for a flag
// "--<flag>: <reason>", e.g. "--ack-wait: must be at least 3s".
func (e *Error) Error() string {
	switch {
	case e.Flag:
		return "--" + e.Field + ": " + e.Reason
	case e.Field == "":
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}
