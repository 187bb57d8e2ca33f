package signature

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signedStandard returns a signer's headers for body at ts, with the secret.
func signedStandard(t testing.TB, ts int64, body []byte) (http.Header, string) {
	t.Helper()
	secret, err := NewSecret(Standard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(Standard, Options{}, secret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	s.SetHeaders(h, "msg_1", ts, body)
	return h, secret
}

// TestVerifyStandard covers verifier behaviour the vectors leave open.
func TestVerifyStandard(t *testing.T) {
	t.Parallel()
	const ts = 1741944613
	body := []byte(`{"type":"cargo.gated_in"}`)
	at := func(sec int64) func() time.Time { return func() time.Time { return time.Unix(sec, 0) } }
	tests := []struct {
		name      string
		edit      func(h http.Header)
		tolerance time.Duration
		now       int64
		wantErr   error
	}{
		{name: "valid", now: ts},
		{name: "zero tolerance means 5 minutes, old edge", now: ts + 300},
		{name: "zero tolerance means 5 minutes, past it", now: ts + 301, wantErr: ErrTimestampTooOld},
		{name: "zero tolerance means 5 minutes, future edge", now: ts - 300},
		{name: "custom tolerance", now: ts + 11, tolerance: 10 * time.Second, wantErr: ErrTimestampTooOld},
		{name: "custom tolerance future", now: ts - 11, tolerance: 10 * time.Second, wantErr: ErrTimestampTooNew},
		{name: "plus sign", now: ts, edit: func(h http.Header) { h.Set(HeaderTimestamp, "+"+h.Get(HeaderTimestamp)) }, wantErr: ErrInvalidTimestamp},
		{name: "negative", now: ts, edit: func(h http.Header) { h.Set(HeaderTimestamp, "-1") }, wantErr: ErrInvalidTimestamp},
		{name: "surrounding space", now: ts, edit: func(h http.Header) { h.Set(HeaderTimestamp, " "+h.Get(HeaderTimestamp)) }, wantErr: ErrInvalidTimestamp},
		{name: "overflow", now: ts, edit: func(h http.Header) { h.Set(HeaderTimestamp, "99999999999999999999") }, wantErr: ErrInvalidTimestamp},
		{name: "far future", now: ts, edit: func(h http.Header) { h.Set(HeaderTimestamp, strconv.FormatInt(1<<62, 10)) }, wantErr: ErrTimestampTooNew},
		{name: "leading zeros sign the same number", now: ts, edit: func(h http.Header) { h.Set(HeaderTimestamp, "00"+h.Get(HeaderTimestamp)) }},
		{name: "signature split over header lines", now: ts, edit: func(h http.Header) {
			h[http.CanonicalHeaderKey(HeaderSignature)] = []string{"v1,AAAA", h.Get(HeaderSignature)}
		}},
		{name: "tab separated entries", now: ts, edit: func(h http.Header) { h.Set(HeaderSignature, "v1,AAAA\t"+h.Get(HeaderSignature)) }},
		{name: "signature with extra comma", now: ts, edit: func(h http.Header) { h.Set(HeaderSignature, h.Get(HeaderSignature)+",x") }, wantErr: ErrSignatureMismatch},
		{name: "all headers missing", now: ts, edit: func(h http.Header) { clear(h) }, wantErr: ErrMissingHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, secret := signedStandard(t, ts, body)
			if tt.edit != nil {
				tt.edit(h)
			}
			v := Verifier{Tolerance: tt.tolerance, Now: at(tt.now)}
			err := v.Verify(h, body, secret)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
			assertNoSecret(t, err, secret)
		})
	}
}

func TestVerifyMissingHeadersNamed(t *testing.T) {
	t.Parallel()
	err := Verifier{}.Verify(http.Header{}, nil, mustSecret(t, Standard))
	for _, name := range []string{HeaderID, HeaderTimestamp, HeaderSignature} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

// TestVerifyRotation: a receiver holding the old and the new key accepts
// hub and hex signatures made with either.
func TestVerifyRotation(t *testing.T) {
	t.Parallel()
	body := []byte("payload")
	for _, p := range []Profile{Hub, Hex} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			oldSecret, newSecret := mustSecret(t, p), mustSecret(t, p)
			for _, signWith := range []string{oldSecret, newSecret} {
				s, err := NewSigner(p, hexOpts(p), signWith)
				if err != nil {
					t.Fatal(err)
				}
				h := http.Header{}
				s.SetHeaders(h, "", 0, body)
				v := Verifier{Profile: p, Options: hexOpts(p)}
				if err := v.Verify(h, body, newSecret, oldSecret); err != nil {
					t.Errorf("Verify with both keys = %v", err)
				}
			}
		})
	}
}

func TestVerifyConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		v       Verifier
		secrets []string
		wantErr error
	}{
		{name: "no secrets", v: Verifier{}, wantErr: ErrInvalidSecret},
		{name: "unknown profile", v: Verifier{Profile: "stripe"}, secrets: []string{"k"}, wantErr: ErrUnknownProfile},
		{name: "hex without header name", v: Verifier{Profile: Hex}, secrets: []string{"k"}, wantErr: ErrInvalidOptions},
		{name: "upper hex is ignored when verifying hub", v: Verifier{Profile: Hub, Options: Options{HexUpper: true}}, secrets: []string{"k"}, wantErr: ErrMissingHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.v.Verify(http.Header{}, nil, tt.secrets...); !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestReason(t *testing.T) {
	t.Parallel()
	if got := Reason(nil); got != "" {
		t.Errorf("Reason(nil) = %q", got)
	}
	if got := Reason(errors.New("other")); got != "" {
		t.Errorf("Reason(other) = %q", got)
	}
	if got := Reason(ErrUnknownProfile); got != "" {
		t.Errorf("Reason(ErrUnknownProfile) = %q", got)
	}
}

// FuzzVerifyStandard: Verify never panics on arbitrary headers, and what a
// Signer produces for any id and body verifies.
func FuzzVerifyStandard(f *testing.F) {
	f.Add("msg_1", "1741944613", "v1,AAAA v2,BBBB", []byte(`{"a":1}`))
	f.Add("", "1741944613.0", "v1,", []byte{})
	f.Add("x", "", ",,, v1 v1,=", []byte{0xff})
	const ts = 1741944613
	secret := mustSecret(f, Standard)
	s, err := NewSigner(Standard, Options{}, secret)
	if err != nil {
		f.Fatal(err)
	}
	v := Verifier{Now: func() time.Time { return time.Unix(ts, 0) }}
	f.Fuzz(func(t *testing.T, id, tsHeader, sig string, body []byte) {
		h := http.Header{}
		h[HeaderID] = []string{id}
		h[HeaderTimestamp] = []string{tsHeader}
		h[HeaderSignature] = []string{sig}
		_ = v.Verify(h, body, secret)

		if id == "" {
			return
		}
		h = http.Header{}
		s.SetHeaders(h, id, ts, body)
		if err := v.Verify(h, body, secret); err != nil {
			t.Errorf("signed request does not verify: %v", err)
		}
	})
}

func mustSecret(t testing.TB, p Profile) string {
	t.Helper()
	s, err := NewSecret(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
