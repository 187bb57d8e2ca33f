package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quaycast/quaycast/gateway/tlstest"
)

// The CLI reaches an API served over HTTPS with a private CA's certificate when given the CA
// (--api-ca), and refuses it otherwise.
func TestCLIWithAnHTTPSAPI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, cert, key := tlstest.Write(t, dir)
	p := serve(t, "--data-dir", filepath.Join(dir, "data"), "--nats-listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key)
	if !strings.HasPrefix(p.api, "https://") {
		t.Fatalf("API at %s, want https", p.api)
	}
	if out := run(t, "endpoints", "list", "--api", p.api, "--api-ca", ca); !strings.Contains(out, "EVENT TYPES") {
		t.Errorf("endpoints list with the CA: %s", out)
	}
	out, err := exec.Command(binary, "endpoints", "list", "--api", p.api).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate") {
		t.Errorf("without the CA: %v %s, want a certificate error", err, out)
	}
	out, err = exec.Command(binary, "endpoints", "list", "--api", p.api, "--api-ca", filepath.Join(dir, "missing.pem")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--api-ca") {
		t.Errorf("with a CA file that does not exist: %v %s, want an error naming --api-ca", err, out)
	}
}
