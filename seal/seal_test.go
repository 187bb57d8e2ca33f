package seal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testKey(t *testing.T, b byte) *Key {
	t.Helper()
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = b
	}
	k, err := New(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := testKey(t, 1)
	sealed := k.Seal("whsec_abc", "ep_1")
	if !IsSealed(sealed) || strings.Contains(sealed, "whsec_abc") {
		t.Fatalf("sealed %q", sealed)
	}
	if got, err := k.Open(sealed, "ep_1"); err != nil || got != "whsec_abc" {
		t.Errorf("open: %q %v", got, err)
	}
	if _, err := k.Open(sealed, "ep_2"); err == nil {
		t.Error("opened for another owner")
	}
	if _, err := testKey(t, 2).Open(sealed, "ep_1"); err == nil {
		t.Error("opened with another key")
	}
	var none *Key
	if _, err := none.Open(sealed, "ep_1"); !errors.Is(err, ErrSealed) {
		t.Errorf("open without a key: %v, want ErrSealed", err)
	}
	if got, err := k.Open("clear", "ep_1"); err != nil || got != "clear" {
		t.Errorf("a clear value: %q %v", got, err)
	}
	if none.Seal("x", "ep_1") != "x" {
		t.Error("a nil key sealed")
	}
	if _, err := New(make([]byte, 16)); err == nil {
		t.Error("a 16-byte key accepted")
	}
}

func TestBindVerify(t *testing.T) {
	k := testKey(t, 1)
	b := k.Bind("token", "tok_1", "endpoints:read")
	if !k.Verify(b, "token", "tok_1", "endpoints:read") {
		t.Fatal("own binding does not verify")
	}
	for name, fields := range map[string][]string{
		"another field":       {"token", "tok_1", "endpoints:read,endpoints:write"},
		"fields shifted":      {"token", "tok_1endpoints:read", ""},
		"one field less":      {"token", "tok_1"},
		"another record kind": {"publisher", "tok_1", "endpoints:read"},
	} {
		if k.Verify(b, fields...) {
			t.Errorf("%s: verifies", name)
		}
	}
	if testKey(t, 2).Verify(b, "token", "tok_1", "endpoints:read") {
		t.Error("verifies with another key")
	}
	if k.Verify("", "token", "tok_1", "endpoints:read") || k.Verify("!!", "token") {
		t.Error("an empty or malformed binding verifies")
	}
}

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth", "secret.key")
	raw, created, err := LoadOrCreate(path)
	if err != nil || !created || len(raw) != 32 {
		t.Fatalf("create: %d bytes, %v, %v", len(raw), created, err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v (%v), want 0600", info.Mode().Perm(), err)
	}
	if dir, err := os.Stat(filepath.Dir(path)); err != nil || dir.Mode().Perm() != 0o700 {
		t.Errorf("folder mode %v (%v), want 0700", dir.Mode().Perm(), err)
	}
	again, created, err := LoadOrCreate(path)
	if err != nil || created || string(again) != string(raw) {
		t.Errorf("load: created %v, %v, same %v", created, err, string(again) == string(raw))
	}
	if err := os.WriteFile(path, []byte("not base64 of 32 bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(path); err == nil {
		t.Error("a bad key file loaded")
	}
}
