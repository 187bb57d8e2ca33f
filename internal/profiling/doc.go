// Package profiling serves Go's profiles (net/http/pprof) on a listener and mux of their own, for
// the gateway's and the bench harness's --pprof-listen: the API's mux never routes /debug/pprof/
// (net/http/pprof registers on http.DefaultServeMux, which nothing in quaycast serves).
package profiling
