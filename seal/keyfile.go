package seal

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LoadOrCreate reads a base64 key file, or creates one (mode 0600, its folder 0700) with 32
// random bytes when there is none. created says which.
func LoadOrCreate(path string) (raw []byte, created bool, err error) {
	s, created, err := ReadOrCreate(path, func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b) // never fails (crypto/rand documents it)
		return base64.StdEncoding.EncodeToString(b)
	})
	if err != nil {
		return nil, false, err
	}
	if raw, err = Decode(s); err != nil {
		return nil, false, fmt.Errorf("key file %s: %w", path, err)
	}
	return raw, created, nil
}

// ReadOrCreate reads a credential file (trimmed), or creates it (with WriteFile) holding what gen
// makes when there is none. created says which.
func ReadOrCreate(path string, gen func() string) (value string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	value = gen()
	if err := WriteFile(path, value+"\n"); err != nil {
		return "", false, err
	}
	return value, true, nil
}

// Decode reads the base64 of 32 bytes.
func Decode(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 32 {
		return nil, errors.New("must be the base64 of 32 bytes (e.g. openssl rand -base64 32)")
	}
	return b, nil
}

// WriteFile writes a credential file readable by its owner only, creating its folder (0700). It
// never replaces an existing file: two gateways starting at once keep the first one's.
func WriteFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
