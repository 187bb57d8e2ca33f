package signature

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vectorFile is testdata/signatures.json, the copy of shared/vectors. Its
// reference_vectors (svix-* header names, stripe) are deliberately not read:
// quaycast neither emits nor verifies those schemes, and the svix algorithm is
// the standard profile's, which the vectors below cover.
type vectorFile struct {
	SchemaVersion    int               `json:"schema_version"`
	ToleranceSeconds int64             `json:"tolerance_seconds"`
	Reasons          map[string]string `json:"reasons"`
	Vectors          []vector          `json:"vectors"`
	SecretVectors    []secretVector    `json:"secret_vectors"`
}

type vector struct {
	ID              string   `json:"id"`
	Profile         string   `json:"profile"`
	Use             string   `json:"use"`
	Secret          string   `json:"secret"`
	PreviousSecrets []string `json:"previous_secrets"`
	Options         struct {
		HeaderName string `json:"header_name"`
		HexCase    string `json:"hex_case"`
	} `json:"options"`
	MsgID      string            `json:"msg_id"`
	Timestamp  int64             `json:"timestamp"`
	Body       string            `json:"body"`
	BodyBytes  int               `json:"body_bytes"`
	BodySHA256 string            `json:"body_sha256"`
	Now        int64             `json:"now"`
	Headers    map[string]string `json:"headers"`
	Expect     string            `json:"expect"`
	Reason     string            `json:"reason"`
}

type secretVector struct {
	ID      string `json:"id"`
	Profile string `json:"profile"`
	Secret  string `json:"secret"`
	Expect  string `json:"expect"`
	KeyHex  string `json:"key_hex"`
	Reason  string `json:"reason"`
}

func loadVectors(t *testing.T) vectorFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "signatures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("decode signatures.json: %v", err)
	}
	if f.SchemaVersion != 1 {
		t.Fatalf("schema_version = %d, this test reads version 1", f.SchemaVersion)
	}
	if len(f.Vectors) == 0 || len(f.SecretVectors) == 0 {
		t.Fatal("signatures.json has no vectors")
	}
	return f
}

// options turns a vector's options into Options, failing on values this test
// does not know.
func (v vector) options(t *testing.T) Options {
	t.Helper()
	o := Options{HeaderName: v.Options.HeaderName}
	switch v.Options.HexCase {
	case "", "lower":
	case "upper":
		o.HexUpper = true
	default:
		t.Fatalf("unknown hex_case %q", v.Options.HexCase)
	}
	return o
}

// body returns the body's UTF-8 bytes after checking them against the
// recorded length and SHA-256, so a mangled file fails loudly here.
func (v vector) body(t *testing.T) []byte {
	t.Helper()
	b := []byte(v.Body)
	if len(b) != v.BodyBytes {
		t.Fatalf("body is %d bytes, body_bytes says %d", len(b), v.BodyBytes)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != v.BodySHA256 {
		t.Fatalf("body sha256 = %x, body_sha256 says %s", sum, v.BodySHA256)
	}
	return b
}

func (v vector) verifier(f vectorFile) Verifier {
	return Verifier{
		Profile:   Profile(v.Profile),
		Options:   Options{HeaderName: v.Options.HeaderName},
		Tolerance: time.Duration(f.ToleranceSeconds) * time.Second,
		Now:       func() time.Time { return time.Unix(v.Now, 0) },
	}
}

// headerForms returns the vector's headers as net/http would build them
// (canonical keys) and as a map with the names exactly as written, which
// Verify must also read case-insensitively.
func headerForms(m map[string]string) map[string]http.Header {
	canonical, raw := http.Header{}, http.Header{}
	for k, v := range m {
		canonical.Set(k, v)
		raw[k] = []string{v}
	}
	return map[string]http.Header{"canonical": canonical, "raw": raw}
}

// reasonErrs maps each vector reason to the sentinel that must carry it.
var reasonErrs = map[string]error{
	"missing_header":     ErrMissingHeader,
	"invalid_timestamp":  ErrInvalidTimestamp,
	"timestamp_too_old":  ErrTimestampTooOld,
	"timestamp_too_new":  ErrTimestampTooNew,
	"signature_mismatch": ErrSignatureMismatch,
	"invalid_secret":     ErrInvalidSecret,
}

func TestVectorReasons(t *testing.T) {
	f := loadVectors(t)
	for reason := range f.Reasons {
		sentinel, ok := reasonErrs[reason]
		if !ok {
			t.Errorf("vectors define reason %q with no sentinel error", reason)
			continue
		}
		if got := Reason(sentinel); got != reason {
			t.Errorf("Reason(%v) = %q, want %q", sentinel, got, reason)
		}
	}
	if len(f.Reasons) != len(reasonErrs) {
		t.Errorf("vectors define %d reasons, package has %d", len(f.Reasons), len(reasonErrs))
	}
}

func TestVectors(t *testing.T) {
	f := loadVectors(t)
	for _, v := range f.Vectors {
		t.Run(v.ID, func(t *testing.T) {
			t.Parallel()
			body := v.body(t)
			switch v.Use {
			case "sign+verify":
				if v.Expect != "valid" {
					t.Fatalf("sign+verify vector expects %q", v.Expect)
				}
				testSign(t, v, body)
				testVerify(t, f, v, body)
			case "verify":
				testVerify(t, f, v, body)
			default:
				t.Fatalf("unknown use %q", v.Use)
			}
		})
	}
}

// testSign checks that signing the vector's inputs gives exactly its headers.
func testSign(t *testing.T, v vector, body []byte) {
	t.Helper()
	p, err := ParseProfile(v.Profile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(p, v.options(t), v.Secret, v.PreviousSecrets...)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	if s.Profile() != p {
		t.Errorf("Profile() = %q, want %q", s.Profile(), p)
	}

	var want string
	found := false
	for name, value := range v.Headers {
		if strings.EqualFold(name, s.HeaderName()) {
			want, found = value, true
		}
	}
	if !found {
		t.Fatalf("HeaderName() = %q, not among the vector's headers %q", s.HeaderName(), v.Headers)
	}
	got := string(s.AppendSignature(nil, v.MsgID, v.Timestamp, body))
	if got != want {
		t.Errorf("AppendSignature = %q\nwant %q", got, want)
	}
	if len(got) != s.SignatureLen() {
		t.Errorf("SignatureLen() = %d, signature is %d bytes", s.SignatureLen(), len(got))
	}

	// The whole header set, as the sender would put it on the request.
	h := http.Header{}
	s.SetHeaders(h, v.MsgID, v.Timestamp, body)
	if len(h) != len(v.Headers) {
		t.Errorf("SetHeaders set %d headers %q, vector has %d %q", len(h), h, len(v.Headers), v.Headers)
	}
	for name, value := range v.Headers {
		if got := h.Values(name); len(got) != 1 || got[0] != value {
			t.Errorf("SetHeaders: %s = %q, want %q", name, got, value)
		}
	}
}

// testVerify checks the receiving side: the vector's expectation, for both
// header forms; for valid sign+verify rotations also each key on its own.
func testVerify(t *testing.T, f vectorFile, v vector, body []byte) {
	t.Helper()
	secrets := append([]string{v.Secret}, v.PreviousSecrets...)
	keySets := [][]string{secrets}
	if v.Expect == "valid" && len(secrets) > 1 {
		for _, s := range secrets {
			keySets = append(keySets, []string{s})
		}
	}
	for form, h := range headerForms(v.Headers) {
		for i, keys := range keySets {
			err := v.verifier(f).Verify(h, body, keys...)
			switch v.Expect {
			case "valid":
				if err != nil {
					t.Errorf("%s headers, key set %d: Verify = %v, want nil", form, i, err)
				}
			case "invalid":
				if err == nil {
					t.Fatalf("%s headers: Verify = nil, want %s", form, v.Reason)
				}
				if got := Reason(err); got != v.Reason {
					t.Errorf("%s headers: Reason = %q, want %q (err: %v)", form, got, v.Reason, err)
				}
				if !errors.Is(err, reasonErrs[v.Reason]) {
					t.Errorf("%s headers: %v does not wrap the %s sentinel", form, err, v.Reason)
				}
				assertNoSecret(t, err, keys...)
			default:
				t.Fatalf("unknown expect %q", v.Expect)
			}
		}
	}
}

func TestSecretVectors(t *testing.T) {
	f := loadVectors(t)
	for _, v := range f.SecretVectors {
		t.Run(v.ID, func(t *testing.T) {
			t.Parallel()
			p, err := ParseProfile(v.Profile)
			if err != nil {
				t.Fatal(err)
			}
			key, err := ParseKey(p, v.Secret)
			switch v.Expect {
			case "accept":
				if err != nil {
					t.Fatalf("ParseKey: %v", err)
				}
				if got := hex.EncodeToString(key); got != v.KeyHex {
					t.Errorf("key = %s, want %s", got, v.KeyHex)
				}
			case "reject":
				if err == nil {
					t.Fatalf("ParseKey accepted it, want %s", v.Reason)
				}
				if got := Reason(err); got != v.Reason {
					t.Errorf("Reason = %q, want %q (err: %v)", got, v.Reason, err)
				}
				assertNoSecret(t, err, v.Secret)
				// The signer refuses it as current or previous secret, and a
				// verifier holding it reports the secret, not the request.
				if _, err := NewSigner(p, hexOpts(p), v.Secret); !errors.Is(err, ErrInvalidSecret) {
					t.Errorf("NewSigner = %v, want ErrInvalidSecret", err)
				}
				good, err := NewSecret(p)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := NewSigner(p, hexOpts(p), good, v.Secret); !errors.Is(err, ErrInvalidSecret) {
					t.Errorf("NewSigner with it as previous secret = %v, want ErrInvalidSecret", err)
				}
				verr := Verifier{Profile: p, Options: hexOpts(p)}.Verify(http.Header{}, nil, good, v.Secret)
				if Reason(verr) != "invalid_secret" {
					t.Errorf("Verify = %v, want invalid_secret", verr)
				}
				assertNoSecret(t, verr, v.Secret)
			default:
				t.Fatalf("unknown expect %q", v.Expect)
			}
		})
	}
}

// hexOpts returns options that are valid for p (hex needs a header name).
func hexOpts(p Profile) Options {
	if p == Hex {
		return Options{HeaderName: "X-Signature"}
	}
	return Options{}
}

// assertNoSecret fails if err's message contains any of the secrets (or,
// for whsec_ secrets, their base64 part).
func assertNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, s := range secrets {
		s = strings.TrimPrefix(s, SecretPrefix)
		if len(s) >= 4 && strings.Contains(msg, s) {
			t.Errorf("error message contains a secret: %q", msg)
		}
	}
}
