// Package bench is the SRE harness: it drives a gateway as a black box with bounded, paced load
// on loopback, and checks what the receivers got against what was published — lost, duplicated
// and out-of-order deliveries per endpoint and entity.
//
// What is run: Scenario and its bounds (scenario.go), the presets and Resolve (preset.go).
// The engine that runs it: Run and its rounds (run.go, round.go, traffic.go), the gateway under
// test (target.go, registration.go, proc.go, gatewaylog.go), the publisher, the receivers, the
// baseline pipeline and the Checker. The report: Result (result.go), the figures the engine takes
// from the receivers (figures.go) and samples every second (timeline.go), its text (report.go)
// and its HTML page (html.go, with charts drawn in svg.go), which read nothing but the Result.
package bench
