package testhttp

import (
	"io"
	"net/http"
	"time"
)

// Get GETs url and returns the status and body; err when no whole answer came.
func Get(url string) (status int, body string, err error) {
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
