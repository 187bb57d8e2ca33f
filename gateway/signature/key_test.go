package signature

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestNewSecret(t *testing.T) {
	t.Parallel()
	for _, p := range []Profile{Standard, Hub, Hex} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			a, err := NewSecret(p)
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewSecret(p)
			if err != nil {
				t.Fatal(err)
			}
			if a == b {
				t.Error("two calls returned the same secret")
			}
			if !strings.HasPrefix(a, SecretPrefix) {
				t.Errorf("secret lacks the %s prefix", SecretPrefix)
			}
			key, err := ParseKey(p, a)
			if err != nil {
				t.Fatalf("ParseKey rejects a NewSecret secret: %v", err)
			}
			wantLen := len(a) // hub/hex: the string's bytes
			if p == Standard {
				wantLen = 32
			}
			if len(key) != wantLen {
				t.Errorf("key is %d bytes, want %d", len(key), wantLen)
			}
			if _, err := NewSigner(p, hexOpts(p), a, b); err != nil {
				t.Errorf("NewSigner with NewSecret secrets: %v", err)
			}
		})
	}
	if _, err := NewSecret("svix"); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("NewSecret(svix) = %v, want ErrUnknownProfile", err)
	}
}

// TestParseKeyStrict covers refusals the vectors do not spell out.
func TestParseKeyStrict(t *testing.T) {
	t.Parallel()
	valid := base64.StdEncoding.EncodeToString([]byte("0123456789abcdefghijklmnopqrstuv")) // 32 bytes
	tests := []struct {
		name    string
		profile Profile
		secret  string
		wantErr error
	}{
		{name: "standard valid", profile: Standard, secret: valid},
		{name: "empty profile is standard", profile: "", secret: SecretPrefix + valid},
		{name: "newline is refused although base64 skips it", profile: Standard, secret: valid[:20] + "\n" + valid[20:], wantErr: ErrInvalidSecret},
		{name: "trailing CR", profile: Standard, secret: valid + "\r", wantErr: ErrInvalidSecret},
		{name: "padding in the middle", profile: Standard, secret: valid[:8] + "====" + valid[12:], wantErr: ErrInvalidSecret},
		{name: "prefix twice", profile: Standard, secret: SecretPrefix + SecretPrefix + valid, wantErr: ErrInvalidSecret},
		{name: "hub invalid UTF-8", profile: Hub, secret: "key\xff", wantErr: ErrInvalidSecret},
		{name: "hex single byte", profile: Hex, secret: "k"},
		{name: "unknown profile", profile: "stripe", secret: valid, wantErr: ErrUnknownProfile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseKey(tt.profile, tt.secret)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseKey = %v, want %v", err, tt.wantErr)
			}
			assertNoSecret(t, err, tt.secret)
		})
	}
}
