// Package seal owns the gateways' secret key and what it protects in NATS: endpoint secrets
// encrypted at rest (AES-256-GCM) and records bound by an HMAC (API tokens, publisher
// credentials), so that whoever can write a bucket cannot forge them. Standard library only.
package seal
