package subjects

import (
	"errors"
	"strings"
	"testing"
)

func TestEncodeToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "empty is a lone tilde", in: "", want: "~"},
		{name: "kept characters unchanged", in: "MSCU1234567_ab-Z", want: "MSCU1234567_ab-Z"},
		{name: "tilde escaped", in: "~", want: "~7E"},
		{name: "two tildes", in: "~~", want: "~7E~7E"},
		{name: "dot", in: "a.b", want: "a~2Eb"},
		{name: "wildcards", in: "*>", want: "~2A~3E"},
		{name: "space", in: "MSCU 1234567", want: "MSCU~201234567"},
		{name: "tab CR LF", in: "\t\r\n", want: "~09~0D~0A"},
		{name: "slash and colon", in: "voy/2026:01", want: "voy~2F2026~3A01"},
		{name: "NUL byte", in: "\x00", want: "~00"},
		{name: "high byte upper-case hex", in: "\xff", want: "~FF"},
		{name: "unicode escaped per byte", in: "é", want: "~C3~A9"},
		{name: "emoji", in: "📦", want: "~F0~9F~93~A6"},
		{name: "invalid UTF-8 kept as bytes", in: "a\xc3", want: "a~C3"},
		{name: "looks like an escape", in: "~41", want: "~7E41"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := EncodeToken(tt.in)
			if got != tt.want {
				t.Errorf("EncodeToken(%q) = %q, want %q", tt.in, got, tt.want)
			}
			assertSingleToken(t, got)
			back, err := DecodeToken(got)
			if err != nil {
				t.Fatalf("DecodeToken(%q): %v", got, err)
			}
			if back != tt.in {
				t.Errorf("DecodeToken(%q) = %q, want %q", got, back, tt.in)
			}
		})
	}
}

func TestDecodeToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{name: "lone tilde is empty", in: "~", want: ""},
		{name: "plain", in: "MSCU1234567", want: "MSCU1234567"},
		{name: "escapes", in: "a~2Eb~20c", want: "a.b c"},
		{name: "escaped tilde", in: "~7E", want: "~"},
		{name: "unicode", in: "~C3~A9t~C3~A9", want: "été"},
		{name: "empty token", in: "", wantErr: "empty token"},
		{name: "truncated escape at end", in: "ab~", wantErr: "truncated"},
		{name: "truncated escape one digit", in: "ab~2", wantErr: "truncated"},
		{name: "double tilde", in: "~~", wantErr: "truncated"},
		{name: "tilde then escape", in: "~~7E", wantErr: "hex"},
		{name: "lower-case hex", in: "~2e", wantErr: "upper-case hex"},
		{name: "non-hex digits", in: "~ZZ", wantErr: "hex"},
		{name: "escape of a kept byte", in: "~41", wantErr: "not escaped"},
		{name: "escape of dash", in: "~2D", wantErr: "not escaped"},
		{name: "raw dot", in: "a.b", wantErr: "invalid byte"},
		{name: "raw space", in: "a b", wantErr: "invalid byte"},
		{name: "raw wildcard", in: "*", wantErr: "invalid byte"},
		{name: "raw non-ASCII", in: "é", wantErr: "invalid byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeToken(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrBadSubject) {
					t.Fatalf("DecodeToken(%q) error = %v, want one wrapping ErrBadSubject", tt.in, err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("DecodeToken(%q) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeToken(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("DecodeToken(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if enc := EncodeToken(got); enc != tt.in {
				t.Errorf("EncodeToken(DecodeToken(%q)) = %q, want the token back (canonical form)", tt.in, enc)
			}
		})
	}
}

func TestEncodeTokenAllBytes(t *testing.T) {
	t.Parallel()
	var all []byte
	for c := 0; c < 256; c++ {
		all = append(all, byte(c))
	}
	enc := EncodeToken(string(all))
	assertSingleToken(t, enc)
	back, err := DecodeToken(enc)
	if err != nil {
		t.Fatalf("DecodeToken: %v", err)
	}
	if back != string(all) {
		t.Errorf("round trip of all 256 bytes differs")
	}
}

func TestEncodeTokenKeepsValidTokensUnchanged(t *testing.T) {
	t.Parallel()
	for _, et := range Builtin().Types() {
		if got := EncodeToken(et.Name); got != et.Name {
			t.Errorf("EncodeToken(%q) = %q, want it unchanged", et.Name, got)
		}
	}
}

// assertSingleToken fails unless tok can stand as one token of a NATS subject.
func assertSingleToken(t *testing.T, tok string) {
	t.Helper()
	if tok == "" {
		t.Fatal("token is empty")
	}
	if i := strings.IndexAny(tok, ".*> \t\r\n"); i >= 0 {
		t.Fatalf("token %q contains %q", tok, tok[i])
	}
}
