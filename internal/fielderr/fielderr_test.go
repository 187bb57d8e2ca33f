package fielderr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/quaycast/quaycast/internal/fielderr"
)

// The API's form names the JSON field; the command line's names the flag, dashes included. Both
// are what users already see: they must not change.
func TestMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   *fielderr.Error
		want string
	}{
		{name: "field and reason", in: &fielderr.Error{Field: "type", Reason: `unknown event type "foo"`}, want: `type: unknown event type "foo"`},
		{name: "reason only", in: &fielderr.Error{Reason: "is required"}, want: "is required"},
		{name: "flag", in: fielderr.Flag("ack-wait", "must be at least 3s"), want: "--ack-wait: must be at least 3s"},
		{name: "flag in a literal", in: &fielderr.Error{Field: "listen", Reason: "missing port", Flag: true}, want: "--listen: missing port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.in.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

// Wrapped, it is still found, with its field and its form.
func TestAs(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("start: %w", fielderr.Flag("data-dir", "must not be empty"))
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != "data-dir" || !fe.Flag {
		t.Errorf("errors.As(%v) = %+v, want the flag error on data-dir", err, fe)
	}
}
