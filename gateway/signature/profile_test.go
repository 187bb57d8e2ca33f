package signature

import (
	"errors"
	"testing"
)

func TestParseProfile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    Profile
		wantErr error
	}{
		{name: "empty is standard", in: "", want: Standard},
		{name: "standard", in: "standard", want: Standard},
		{name: "hub", in: "hub", want: Hub},
		{name: "hex", in: "hex", want: Hex},
		{name: "case ignored", in: "HuB", want: Hub},
		{name: "svix is not a profile", in: "svix", wantErr: ErrUnknownProfile},
		{name: "stripe is not a profile", in: "stripe", wantErr: ErrUnknownProfile},
		{name: "no trimming", in: " hex", wantErr: ErrUnknownProfile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseProfile(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseProfile(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseProfile(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestProfileOptions holds ValidateOptions, NewSigner and the header names to one table: a signer
// is built for exactly the options ValidateOptions accepts, and writes its signature in the header
// Profile.HeaderName names without a secret.
func TestProfileOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		profile Profile
		opts    Options
		header  string // when valid: the header the signature goes in
		wantErr error
	}{
		{name: "standard zero", profile: Standard, header: HeaderSignature},
		{name: "empty profile is standard", profile: "", header: HeaderSignature},
		{name: "standard rejects header name", profile: Standard, opts: Options{HeaderName: "X-Sig"}, wantErr: ErrInvalidOptions},
		{name: "standard rejects upper hex", profile: Standard, opts: Options{HexUpper: true}, wantErr: ErrInvalidOptions},
		{name: "hub zero uses default", profile: Hub, header: DefaultHubHeader},
		{name: "hub custom header", profile: Hub, opts: Options{HeaderName: "X-Hub-Signature"}, header: "X-Hub-Signature"},
		{name: "hub rejects upper hex", profile: Hub, opts: Options{HeaderName: "X-Hub-Signature", HexUpper: true}, wantErr: ErrInvalidOptions},
		{name: "hub header with space", profile: Hub, opts: Options{HeaderName: "X Hub"}, wantErr: ErrInvalidOptions},
		{name: "hub header with colon", profile: Hub, opts: Options{HeaderName: "X-Hub:"}, wantErr: ErrInvalidOptions},
		{name: "hub header non-ASCII", profile: Hub, opts: Options{HeaderName: "X-Sïg"}, wantErr: ErrInvalidOptions},
		{name: "hex needs header", profile: Hex, wantErr: ErrInvalidOptions},
		{name: "hex lower, header spelling kept", profile: Hex, opts: Options{HeaderName: "veson-webhook-signature"}, header: "veson-webhook-signature"},
		{name: "hex upper", profile: Hex, opts: Options{HeaderName: "Veson-Webhook-Signature", HexUpper: true}, header: "Veson-Webhook-Signature"},
		{name: "hex token punctuation", profile: Hex, opts: Options{HeaderName: "x_sig.v2~!"}, header: "x_sig.v2~!"},
		{name: "hex header with newline", profile: Hex, opts: Options{HeaderName: "X-Sig\r\nX-Evil"}, wantErr: ErrInvalidOptions},
		{name: "client-managed header", profile: Hex, opts: Options{HeaderName: "content-length"}, wantErr: ErrInvalidOptions},
		{name: "standard header name taken", profile: Hub, opts: Options{HeaderName: "Webhook-Signature"}, wantErr: ErrInvalidOptions},
		{name: "unknown profile", profile: "svix", wantErr: ErrUnknownProfile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.profile.ValidateOptions(tt.opts); !errors.Is(err, tt.wantErr) {
				t.Errorf("ValidateOptions(%+v) = %v, want %v", tt.opts, err, tt.wantErr)
			}
			secret, err := NewSecret(tt.profile)
			if err != nil && tt.wantErr == nil {
				t.Fatal(err)
			}
			s, err := NewSigner(tt.profile, tt.opts, secret)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewSigner(%q, %+v) error = %v, want %v", tt.profile, tt.opts, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got := s.HeaderName(); got != tt.header {
				t.Errorf("Signer.HeaderName() = %q, want %q", got, tt.header)
			}
			if got := tt.profile.HeaderName(tt.opts); got != tt.header {
				t.Errorf("Profile.HeaderName(%+v) = %q, want %q", tt.opts, got, tt.header)
			}
		})
	}
}
