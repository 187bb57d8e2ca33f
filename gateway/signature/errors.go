package signature

import "errors"

// Verification failures. Each matches one reason string of the shared test
// vectors (see Reason), so the gateway, the `quaycast verify` command and the
// receivers' documentation speak of the same categories. Returned errors wrap
// one of them and say which header or what failed; they never contain a
// secret.
var (
	// ErrMissingHeader: a required signature header is absent or empty.
	ErrMissingHeader = errors.New("missing or empty header")
	// ErrInvalidTimestamp: webhook-timestamp is not a base-10 integer of seconds.
	ErrInvalidTimestamp = errors.New("invalid timestamp")
	// ErrTimestampTooOld: the timestamp is further in the past than the tolerance.
	ErrTimestampTooOld = errors.New("timestamp too old")
	// ErrTimestampTooNew: the timestamp is further in the future than the tolerance.
	ErrTimestampTooNew = errors.New("timestamp too new")
	// ErrSignatureMismatch: no signature in the request matches the body and keys.
	ErrSignatureMismatch = errors.New("signature mismatch")
	// ErrInvalidSecret: a configured secret is not acceptable for the profile.
	ErrInvalidSecret = errors.New("invalid secret")
)

// Configuration errors, so the API can tell which field of an endpoint is
// wrong. They have no vector reason.
var (
	// ErrUnknownProfile: the profile name is not standard, hub or hex.
	ErrUnknownProfile = errors.New("unknown signature profile")
	// ErrInvalidOptions: Options do not fit the profile.
	ErrInvalidOptions = errors.New("invalid signature options")
)

// Reason returns the vectors' reason string for err ("missing_header",
// "invalid_timestamp", "timestamp_too_old", "timestamp_too_new",
// "signature_mismatch", "invalid_secret"), or "" when err is nil or none of
// them. Use it for logs, metrics and the verify command's output.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return ""
}

var reasons = []struct {
	err    error
	reason string
}{
	{ErrMissingHeader, "missing_header"},
	{ErrInvalidTimestamp, "invalid_timestamp"},
	{ErrTimestampTooOld, "timestamp_too_old"},
	{ErrTimestampTooNew, "timestamp_too_new"},
	{ErrSignatureMismatch, "signature_mismatch"},
	{ErrInvalidSecret, "invalid_secret"},
}
