// Package race says whether the race detector is built in: allocation guards skip under it,
// because its instrumentation allocates.
package race
