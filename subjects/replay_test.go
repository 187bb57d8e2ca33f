package subjects

import (
	"errors"
	"testing"
)

func TestReplaySubjectRoundTrip(t *testing.T) {
	s, err := ReplaySubject("ep_abc", "tos", "cargo_loaded")
	if err != nil || s != "replay.ep_abc.tos.cargo_loaded" {
		t.Fatalf("ReplaySubject = %q, %v", s, err)
	}
	ep, source, typ, err := ParseAny(s)
	if err != nil || ep != "ep_abc" || source != "tos" || typ != "cargo_loaded" {
		t.Errorf("ParseAny(%q) = %q %q %q %v", s, ep, source, typ, err)
	}
	if f := ReplayFilter("ep_abc"); f != "replay.ep_abc.>" {
		t.Errorf("ReplayFilter = %q", f)
	}
	ep, source, typ, err = ParseAny("evt.tms.shipment_booked")
	if err != nil || ep != "" || source != "tms" || typ != "shipment_booked" {
		t.Errorf("ParseAny(event subject) = %q %q %q %v", ep, source, typ, err)
	}
}

func TestParseAnyRejects(t *testing.T) {
	for _, s := range []string{"replay.ep.tos", "replay.ep.tos.a.b", "replay.e~zz.tos.a", "replay.ep.TOS.a", "evt.tos", "nope.a.b"} {
		if _, _, _, err := ParseAny(s); !errors.Is(err, ErrBadSubject) {
			t.Errorf("ParseAny(%q) error %v, want ErrBadSubject", s, err)
		}
	}
	if _, err := ReplaySubject("ep", "T", "x"); err == nil {
		t.Error("ReplaySubject accepted a bad source")
	}
}
