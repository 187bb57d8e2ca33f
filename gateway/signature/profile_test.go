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

func TestValidateOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		profile Profile
		opts    Options
		wantErr error
	}{
		{name: "standard zero", profile: Standard},
		{name: "empty profile is standard", profile: ""},
		{name: "standard rejects header name", profile: Standard, opts: Options{HeaderName: "X-Sig"}, wantErr: ErrInvalidOptions},
		{name: "standard rejects upper hex", profile: Standard, opts: Options{HexUpper: true}, wantErr: ErrInvalidOptions},
		{name: "hub zero uses default", profile: Hub},
		{name: "hub custom header", profile: Hub, opts: Options{HeaderName: "X-Hub-Signature"}},
		{name: "hub rejects upper hex", profile: Hub, opts: Options{HeaderName: "X-Hub-Signature", HexUpper: true}, wantErr: ErrInvalidOptions},
		{name: "hub header with space", profile: Hub, opts: Options{HeaderName: "X Hub"}, wantErr: ErrInvalidOptions},
		{name: "hub header with colon", profile: Hub, opts: Options{HeaderName: "X-Hub:"}, wantErr: ErrInvalidOptions},
		{name: "hub header non-ASCII", profile: Hub, opts: Options{HeaderName: "X-Sïg"}, wantErr: ErrInvalidOptions},
		{name: "hex needs header", profile: Hex, wantErr: ErrInvalidOptions},
		{name: "hex lower", profile: Hex, opts: Options{HeaderName: "Veson-Webhook-Signature"}},
		{name: "hex upper", profile: Hex, opts: Options{HeaderName: "Veson-Webhook-Signature", HexUpper: true}},
		{name: "hex token punctuation", profile: Hex, opts: Options{HeaderName: "x_sig.v2~!"}},
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
		})
	}
}

func TestSignerHeaderName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		profile Profile
		opts    Options
		want    string
	}{
		{name: "standard", profile: Standard, want: HeaderSignature},
		{name: "empty profile", profile: "", want: HeaderSignature},
		{name: "hub default", profile: Hub, want: DefaultHubHeader},
		{name: "hub configured", profile: Hub, opts: Options{HeaderName: "X-Hub-Signature"}, want: "X-Hub-Signature"},
		{name: "hex configured, spelling kept", profile: Hex, opts: Options{HeaderName: "veson-webhook-signature"}, want: "veson-webhook-signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secret, err := NewSecret(tt.profile)
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewSigner(tt.profile, tt.opts, secret)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.HeaderName(); got != tt.want {
				t.Errorf("HeaderName() = %q, want %q", got, tt.want)
			}
		})
	}
}
