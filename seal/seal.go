package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Key is the gateways' secret key. A nil *Key seals nothing and binds nothing: records are kept in
// the clear, as they were before a key was configured.
type Key struct {
	aead cipher.AEAD
	mac  []byte // HMAC key for bindings, derived so the AES key is used for one thing only
}

const sealedPrefix = "aesgcm:"

// ErrSealed is returned when a stored secret is encrypted and no key is configured.
var ErrSealed = errors.New("endpoint secret is encrypted and no secret key is configured")

// ErrNotSealed is returned by Check for a value that should be sealed and is not.
var ErrNotSealed = errors.New("secret is stored in the clear")

// New returns the key for 32 raw bytes; nil bytes give a nil key.
func New(raw []byte) (*Key, error) {
	if raw == nil {
		return nil, nil
	}
	if len(raw) != 32 {
		return nil, fmt.Errorf("secret key: want 32 bytes, got %d", len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	m := hmac.New(sha256.New, raw)
	m.Write([]byte("quaycast record binding v1"))
	return &Key{aead: aead, mac: m.Sum(nil)}, nil
}

// Seal returns what to store for secret: itself without a key, else "aesgcm:" + base64(nonce|ct).
// The owner's id is the additional data: a sealed secret copied to another record does not open.
func (k *Key) Seal(secret, owner string) string {
	if k == nil || secret == "" {
		return secret
	}
	nonce := make([]byte, k.aead.NonceSize())
	_, _ = rand.Read(nonce) // never fails (crypto/rand documents it)
	return sealedPrefix + base64.StdEncoding.EncodeToString(k.aead.Seal(nonce, nonce, []byte(secret), []byte(owner)))
}

// IsSealed reports whether a stored value is sealed.
func IsSealed(stored string) bool { return strings.HasPrefix(stored, sealedPrefix) }

// Open reverses Seal. A secret stored before a key was configured is read as it is (and sealed at
// the next write, or when the gateway starts).
func (k *Key) Open(stored, owner string) (string, error) {
	if !IsSealed(stored) {
		return stored, nil
	}
	if k == nil {
		return "", ErrSealed
	}
	raw, err := base64.StdEncoding.DecodeString(stored[len(sealedPrefix):])
	if err != nil || len(raw) < k.aead.NonceSize() {
		return "", errors.New("sealed secret is malformed")
	}
	plain, err := k.aead.Open(nil, raw[:k.aead.NonceSize()], raw[k.aead.NonceSize():], []byte(owner))
	if err != nil {
		return "", errors.New("sealed secret does not open with the configured key")
	}
	return string(plain), nil
}

// Bind returns the binding of a record's fields: base64 of an HMAC-SHA256 over them, each
// length-prefixed so that no two field lists share a binding. Empty without a key.
func (k *Key) Bind(fields ...string) string {
	if k == nil {
		return ""
	}
	return base64.RawStdEncoding.EncodeToString(k.sum(fields))
}

// Verify reports whether binding is Bind(fields...), in constant time. Without a key every
// record verifies: there is nothing to check it against.
func (k *Key) Verify(binding string, fields ...string) bool {
	if k == nil {
		return true
	}
	got, err := base64.RawStdEncoding.DecodeString(binding)
	return err == nil && hmac.Equal(got, k.sum(fields))
}

func (k *Key) sum(fields []string) []byte {
	m := hmac.New(sha256.New, k.mac)
	var n [8]byte
	for _, f := range fields {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		m.Write(n[:])
		m.Write([]byte(f))
	}
	return m.Sum(nil)
}
