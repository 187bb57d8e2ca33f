// Package tokens owns the API tokens, stored hashed and bound in the KV bucket quaycast_tokens.
//
// A token is "qct_<id>_<secret>"; the bucket keeps its id, name, scopes and the SHA-256 of the
// secret, never the secret, and a binding of all of them made with the gateways' secret key
// (package seal): a record written by anyone else, or edited (more scopes), does not verify and
// is refused. The bucket is created by New, with the same settings by every gateway.
package tokens
