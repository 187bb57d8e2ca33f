// Package seal owns the gateways' secret key. It encrypts endpoint secrets at rest in NATS
// (AES-256-GCM) and binds records with an HMAC (API tokens, publisher credentials), so that
// whoever can write a bucket cannot forge them. Standard library only.
package seal
