// Package credential owns what API tokens and publisher credentials share: minting an id with a
// secret, reading a presented one back, checking the secret against its stored SHA-256 in
// constant time, and keeping the records, one JSON value per id, in a KV bucket. What a record
// holds and how it is bound stay with the package that stores it (tokens, natsauth).
package credential
