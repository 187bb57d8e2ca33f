package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// healthcheckCmd is a container's health probe: the image is distroless, without a shell, curl
// or wget to run one.
type healthcheckCmd struct {
	URL     string        `name:"url" default:"http://127.0.0.1:8080/readyz" help:"What to GET: healthy when it answers 200."`
	CA      string        `name:"api-ca" env:"QUAYCAST_API_CA" help:"PEM CA certificate(s) to verify an https URL with." placeholder:"FILE"`
	Timeout time.Duration `name:"timeout" default:"5s" help:"Unhealthy when no answer comes within this time."`
}

// Run returns nil (exit 0) on 200 and an error (exit 1, what Docker reads as unhealthy) on
// anything else, saying why in the probe's output, which `docker inspect` shows.
func (c *healthcheckCmd) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return fmt.Errorf("--url %q: %w", c.URL, err)
	}
	var rt http.RoundTripper = http.DefaultTransport.(*http.Transport).Clone()
	if c.CA != "" {
		rt = trusting(c.CA)
	}
	if t, ok := rt.(*http.Transport); ok {
		t.Proxy = nil // a proxy from the container's environment must not answer for the gateway
	}
	client := &http.Client{
		Transport: rt,
		// A redirect is not the 200 asked for.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	var apiErr struct{ Error string }
	why := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &apiErr) == nil && apiErr.Error != "" {
		why = apiErr.Error // the API's {"error": ...}
	}
	if why != "" {
		why = ": " + why
	}
	return fmt.Errorf("unhealthy: GET %s: %s%s", c.URL, resp.Status, why)
}
