// Package service is what an operator can do: register, change and delete webhook endpoints
// (with their validation and target checks), rotate their secrets, send test events, read the
// delivery log, list, replay and purge dead letters, and manage API tokens and NATS publishers —
// each authorized here, once, for the caller a token identifies. The JSON API (gateway) and the
// web console call it; it knows no HTTP, and answers with typed errors (NotFoundError,
// ForbiddenError, ConflictError, *fielderr.Error) that each front end maps in one place.
package service
