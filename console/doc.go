// Package console owns the operator's web console served at /ui/: its handlers, html/template
// pages and embedded assets (one stylesheet, one small script that only enhances). It acts
// through the same service layer as the JSON API, with the signed-in token's caller, and never
// touches NATS itself, so it works the same on any gateway of a cluster.
package console
