// Package memtrim gives the operating system back the heap a burst left behind once the process
// is quiet. The Go runtime keeps what a burst grew (it collects when the heap doubles and returns
// pages only above the next goal): a gateway that woke 10,000 endpoints kept ~650 MiB while it
// idled with ~475 MiB in use, until its next burst. A soft memory limit (GOMEMLIMIT) set near the
// live heap instead collected without rest (1.8 cores idle, PERFORMANCE.md).
package memtrim
