// Package natsauth owns who may do what on NATS: the accounts and permissions of quaycast's own
// connection and of upstream publishers, the embedded server's authenticator, the publisher
// credentials it checks (stored bound in the KV bucket quaycast_publishers), and the
// authorization block an operator gives an external NATS.
package natsauth
