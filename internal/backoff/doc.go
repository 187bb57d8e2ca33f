// Package backoff owns the waits between the tries of something that keeps failing for a while
// (a server not reachable yet, a store that refuses writes): doubling from a first wait up to a
// cap, so that a long outage costs few tries and a short one is noticed soon.
package backoff
