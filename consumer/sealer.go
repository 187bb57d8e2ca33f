package consumer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// sealer encrypts endpoint secrets before they are stored in the registry bucket (AES-256-GCM),
// so the KV files on disk and anyone reading the bucket see ciphertext. The endpoint id is the
// additional data: a sealed secret copied to another endpoint does not open.
type sealer struct{ aead cipher.AEAD }

const sealedPrefix = "aesgcm:"

// ErrSealed is returned when a stored secret is encrypted and no key is configured.
var ErrSealed = errors.New("endpoint secret is encrypted and no secret key is configured")

func newSealer(key []byte) (*sealer, error) {
	if key == nil {
		return nil, nil
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key: want 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// seal returns what to store for secret: itself without a key, else "aesgcm:" + base64(nonce|ct).
func (s *sealer) seal(secret, endpointID string) string {
	if s == nil || secret == "" {
		return secret
	}
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce) // never fails (crypto/rand documents it)
	return sealedPrefix + base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(secret), []byte(endpointID)))
}

// open reverses seal. A secret stored before a key was configured is read as it is (and sealed at
// the next write).
func (s *sealer) open(stored, endpointID string) (string, error) {
	if !strings.HasPrefix(stored, sealedPrefix) {
		return stored, nil
	}
	if s == nil {
		return "", ErrSealed
	}
	raw, err := base64.StdEncoding.DecodeString(stored[len(sealedPrefix):])
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", errors.New("sealed secret is malformed")
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(endpointID))
	if err != nil {
		return "", errors.New("sealed secret does not open with the configured key")
	}
	return string(plain), nil
}
