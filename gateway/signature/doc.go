// Package signature owns the webhook signature schemes, by which quaycast signs
// a delivery and a receiver verifies it: the three signing profiles, the
// secrets they accept, and the verification rules the shared test vectors
// (shared/vectors/signatures.json, copied to testdata/) pin down.
//
// It imports only the standard library: the sender, the API and the
// `quaycast verify` command all build on it, and receivers can read it as the
// reference.
//
// # Profiles
//
//	standard  Standard Webhooks (and Svix's algorithm). Key: the secret minus an
//	          optional "whsec_" prefix, base64-decoded (24 to 64 bytes).
//	          Signed: "<webhook-id>.<webhook-timestamp>.<body>". Headers
//	          webhook-id, webhook-timestamp (Unix seconds) and
//	          webhook-signature "v1,<base64>", one entry per key during a
//	          rotation, separated by spaces.
//	hub       GitHub style. Key: the secret's UTF-8 bytes. Signed: the body.
//	          Header X-Hub-Signature-256 (configurable): "sha256=<lower hex>".
//	hex       Key: the secret's UTF-8 bytes. Signed: the body. A header the
//	          user names carries the bare hex, upper or lower case as
//	          configured, because some receivers compare the string exactly.
//
// All three use HMAC-SHA256 over the raw body bytes: a receiver must verify
// the bytes as received, before parsing or re-serialising JSON.
//
// # Signing
//
// A Signer is built once per endpoint (NewSigner) and shared by all of its
// deliveries. AppendSignature writes the header value into a caller buffer and
// allocates nothing once warm, because each key keeps a pool of HMAC states
// with the key schedule already applied. Standard signs with the current key
// and every previous key still in its grace period, so receivers can rotate at
// their own pace; hub and hex carry one signature and use the current key.
//
// # Verifying
//
// Verifier.Verify checks a received request against one or more secrets and
// returns an error wrapping one of ErrMissingHeader, ErrInvalidTimestamp,
// ErrTimestampTooOld, ErrTimestampTooNew, ErrSignatureMismatch or
// ErrInvalidSecret; Reason maps it to the vectors' reason string. Where the
// reference libraries disagree (decimal timestamps, svix-* header names,
// unpadded secrets, upper-case hub hex) this package takes the strict side
// the vectors' README documents. Errors never contain a secret.
package signature
