package credential

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"github.com/quaycast/quaycast/internal/fielderr"
)

// Kind describes one kind of credential and its bucket.
type Kind struct {
	Noun        string // "token": in errors
	IDPrefix    string // "tok_": an id is this and 20 lower-case hex digits
	Prefix      string // "qct_": a presented credential is this, the id's hex digits, "_" and the secret
	NotFound    error  // returned for an id the bucket does not hold
	Bucket      string // the KV bucket
	Description string // of the bucket
}

// hexLen is the length of an id's hex part: 10 random bytes.
const hexLen = 20

// Mint returns a new id, the credential a caller presents (the only time its secret exists) and
// the SHA-256 of the secret, which is what is stored.
func (k Kind) Mint() (id, presented, hash string) {
	var rawID [10]byte
	var secret [32]byte
	_, _ = rand.Read(rawID[:]) // never fails (crypto/rand documents it)
	_, _ = rand.Read(secret[:])
	hexID := hex.EncodeToString(rawID[:])
	sec := base64.RawURLEncoding.EncodeToString(secret[:])
	return k.IDPrefix + hexID, k.Prefix + hexID + "_" + sec, Hash(sec)
}

// Parse splits a presented credential into its id and secret; ok is false when it is not one of
// this kind.
func (k Kind) Parse(presented string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(presented, k.Prefix)
	hexID, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(hexID) != hexLen || secret == "" {
		return "", "", false
	}
	return k.IDPrefix + hexID, secret, true
}

// ValidID reports whether id has the form of this kind's ids, so that one that cannot exist is
// not found without asking the bucket (which refuses some keys with an error of its own).
func (k Kind) ValidID(id string) bool {
	hexPart, ok := strings.CutPrefix(id, k.IDPrefix)
	return ok && len(hexPart) == hexLen && strings.Trim(hexPart, "0123456789abcdef") == ""
}

// CheckName refuses a credential's name, which is for people, when it is empty or longer than
// 128 bytes.
func CheckName(name string) error {
	if name == "" || len(name) > 128 {
		return &fielderr.Error{Field: "name", Reason: "is required, at most 128 bytes"}
	}
	return nil
}

// Hash is the stored form of a secret: hex SHA-256.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Matches reports in constant time whether secret is the one hash was made of.
func Matches(secret, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(Hash(secret)), []byte(hash)) == 1
}
