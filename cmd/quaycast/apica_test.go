package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The CLI reaches an API served over HTTPS with a private CA's certificate when given the CA
// (--api-ca), and refuses it otherwise.
func TestCLIWithAnHTTPSAPI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, cert, key := writeTestCA(t, dir)
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

// writeTestCA writes a CA and a server certificate for 127.0.0.1 into dir.
func writeTestCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", keyDER)
}
