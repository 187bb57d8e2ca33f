package gateway

import (
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestInetAton(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in          string
		want        string // "" = not an address
		wantNumeric bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"127.1", "127.0.0.1", true},
		{"127.0.1", "127.0.0.1", true},
		{"2130706433", "127.0.0.1", true},
		{"0x7f000001", "127.0.0.1", true},
		{"0x7f.1", "127.0.0.1", true},
		{"0177.0.0.1", "127.0.0.1", true},
		{"017700000001", "127.0.0.1", true},
		{"127.000.000.001", "127.0.0.1", true},
		{"00000127.0.0.1", "87.0.0.1", true},
		{"169.254.43518", "169.254.169.254", true},
		{"0251.0376.0251.0376", "169.254.169.254", true},
		{"10.1", "10.0.0.1", true},
		{"0x", "0.0.0.0", true},
		{"0", "0.0.0.0", true},
		{"255.255.255.255", "255.255.255.255", true},
		{"4294967295", "255.255.255.255", true},
		{"4294967296", "", true},
		{"1.16777216", "", true},
		{"1.2.65536", "", true},
		{"256.1.1.1", "", true},
		{"1.2.3.4.5", "", true},
		{"08.0.0.1", "", true},
		{"1..1", "", true},
		{"foo.1", "", true},
		{"0xg", "", false},
		{"example.com", "", false},
		{"1.2.3.x", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		addr, numeric, ok := inetAton(tc.in)
		if numeric != tc.wantNumeric || ok != (tc.want != "") || ok && addr != netip.MustParseAddr(tc.want) {
			t.Errorf("inetAton(%q) = %v, numeric %v, ok %v; want %q, numeric %v", tc.in, addr, numeric, ok, tc.want, tc.wantNumeric)
		}
	}
}

// Every cloud-metadata name refused is among the forms tested one by one.
func TestMetadataHostsAreTested(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/refused_targets.txt")
	if err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			tested[f[0]] = true
		}
	}
	for _, h := range metadataHosts {
		if !tested[h] {
			t.Errorf("metadata host %s is not in testdata/refused_targets.txt", h)
		}
	}
}
