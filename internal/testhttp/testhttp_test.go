package testhttp_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/quaycast/quaycast/internal/testhttp"
)

// Get gives the status and body of an answer, and an error where none came.
func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("short and stout"))
	}))
	code, body, err := testhttp.Get(srv.URL)
	if err != nil || code != http.StatusTeapot || body != "short and stout" {
		t.Errorf("Get: %d, %q, %v; want 418 and the body", code, body, err)
	}
	srv.Close()
	if _, _, err := testhttp.Get(srv.URL); err == nil {
		t.Error("Get of a closed server: no error")
	}
}
