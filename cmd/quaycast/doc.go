// Command quaycast owns the command line: `quaycast serve` runs the webhook gateway, and the
// other commands talk to one.
//
// They manage endpoints, dead letters, API tokens and publishers through the API, publish an
// event, verify a signature, print the event catalogue or the accounts an external NATS needs,
// and run the load harness (`bench`). This package parses flags, builds the logger, handles
// signals and maps errors to exit codes; the work is in the packages.
package main
