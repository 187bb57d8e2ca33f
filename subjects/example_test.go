package subjects_test

import (
	"fmt"

	"github.com/quaycast/quaycast/subjects"
)

func ExampleSubject() {
	subj, _ := subjects.Subject("tos", "cargo_gated_in")
	source, typ, _ := subjects.Parse(subj)
	fmt.Println(subj, source, typ)
	// Output: evt.tos.cargo_gated_in tos cargo_gated_in
}

func ExampleEncodeToken() {
	for _, id := range []string{"MSCU1234567", "MSCU 1234567/1", "~", ""} {
		tok := subjects.EncodeToken(id)
		back, _ := subjects.DecodeToken(tok)
		fmt.Printf("%q -> %s -> %q\n", id, tok, back)
	}
	// Output:
	// "MSCU1234567" -> MSCU1234567 -> "MSCU1234567"
	// "MSCU 1234567/1" -> MSCU~201234567~2F1 -> "MSCU 1234567/1"
	// "~" -> ~7E -> "~"
	// "" -> ~ -> ""
}

func ExampleFilters() {
	f, _ := subjects.Filters([]string{"group:reefer", "cargo_loaded", "reefer_plugged_in"})
	fmt.Println(f)
	f, _ = subjects.Filters([]string{"*"})
	fmt.Println(f)
	_, err := subjects.Filters([]string{"cargo_loaded", "cargo_teleported"})
	fmt.Println(err)
	// Output:
	// [evt.*.cargo_loaded evt.*.reefer_plugged_in evt.*.reefer_plugged_out]
	// [evt.>]
	// event_types[1]: unknown event type "cargo_teleported"
}

func ExampleParseEnvelope() {
	body := []byte(`{"id":"e-1","type":"cargo_gated_in","source":"tos","entity":"MSCU1234567",` +
		`"occurred_at":"2026-03-01T14:05:09Z","data":{"gate":"G3"}}`)
	e, err := subjects.ParseEnvelope(body)
	fmt.Println(e.Subject(), e.Entity, err)

	_, err = subjects.ParseEnvelope([]byte(`{"id":"e-1","type":"foo"}`))
	fmt.Println(err)
	// Output:
	// evt.tos.cargo_gated_in MSCU1234567 <nil>
	// type: unknown event type "foo"
}
