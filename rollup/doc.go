// Package rollup owns the hourly delivery figures per endpoint: the gateway delivering to an
// endpoint counts each attempt's outcome and latency in memory, and publishes one record per
// endpoint with traffic each minute to a JetStream stream that any gateway of the cluster reads,
// so that the figures survive a restart or a handover and do not depend on the delivery log.
package rollup
