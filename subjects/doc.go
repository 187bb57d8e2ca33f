// Package subjects owns what an event is: the subject grammar and headers of
// an event on NATS, the reversible encoding of arbitrary ids into subject
// tokens, the event catalogue, subscription selectors and the JetStream
// filters they map to, and the JSON envelope upstream systems publish.
//
// It is pure functions over bytes and strings and imports only the standard
// library: no NATS, no HTTP, no logging.
//
// # Subjects and headers
//
// An event is published to
//
//	evt.<source>.<type>
//
// where <source> names the publishing system (e.g. "tos", "octopi-rtm") and
// <type> is a catalogue type (e.g. "cargo_gated_in"). Both are tokens of 1 to
// 64 characters of [a-z0-9_-] (see ValidToken). The events stream captures
// "evt.>" (StreamSubjects).
//
// The entity id (container, shipment, voyage) is deliberately not a subject
// token: a per-entity subject made a filtered consumer drain a backlog 7-20x
// slower. It travels in the envelope's "entity" field and in the
// Quaycast-Entity header (HeaderEntity). Publishers set Nats-Msg-Id
// (HeaderMsgID) to the envelope's id, so JetStream drops a retried publish of
// the same event inside its duplicate window.
//
// Subject and Parse build and split event subjects; Parse errors wrap
// ErrBadSubject. Both check the grammar, not the catalogue.
//
// Where an arbitrary user string must go into a subject (e.g. a reply subject
// quaycast.reply.<endpoint>.<type>.<entity>), EncodeToken turns it into one
// valid token: [A-Za-z0-9_-] is kept, every other byte becomes "~XX" (upper-case
// hex, so "~" itself becomes "~7E"), and the empty string becomes a lone "~".
// For example "MSCU 1234567/1" encodes as "MSCU~201234567~2F1". DecodeToken
// reverses it and accepts only the canonical form EncodeToken produces.
//
// # Envelope
//
// The message body is a JSON object, at most 1 MiB (MaxEventBytes), delivered
// to receivers byte-for-byte:
//
//	{
//	  "id": "01HZX3T6Q9V6K2J8M4N5P7R0ST",
//	  "type": "cargo_gated_in",
//	  "source": "tos",
//	  "entity": "MSCU1234567",
//	  "occurred_at": "2026-03-01T14:05:09Z",
//	  "data": {"gate": "G3", "truck": "TRK-42"}
//	}
//
// The fields:
//
//   - id: 1..128 bytes of printable ASCII without space (0x21-0x7e); it is the
//     Nats-Msg-Id and the webhook-id header.
//   - type: a catalogue type name.
//   - source: a valid token; the <source> of the subject.
//   - entity: 1..256 bytes of valid UTF-8 without control characters.
//   - occurred_at: an RFC 3339 timestamp.
//   - data: a JSON object, the event's own payload.
//
// Other top-level fields are allowed and passed through untouched; a key may
// not appear twice. ParseEnvelope and Envelope.Validate report a *fielderr.Error
// naming the JSON field ("body" for the message as a whole).
//
// # Selectors
//
// An endpoint's event_types is a non-empty list of selectors, each one of
//
//	cargo_gated_in   an exact type name
//	group:gate       every type of a group
//	*                every type
//
// Each may be qualified with a source, for that source's events only:
//
//	tos-rotterdam:cargo_loaded   a type of one source
//	tos-rotterdam:group:gate     a group of one source
//	tos-rotterdam:*              every type of one source
//
// Expand lists the types a selector list covers; Filters gives the JetStream
// FilterSubjects of the endpoint's consumer: ["evt.>"] for "*", otherwise one
// "evt.*.<type>" per covered type and "evt.<source>.<type>" or "evt.<source>.>"
// per source, sorted, unique and never overlapping (at most MaxFilters).
//
// # Live catalogue
//
// The catalogue is a value, *Catalogue: Builtin holds the built-in types, and
// NewCatalogue adds custom ones. The package-level functions (Lookup, Filters,
// ParseEnvelope, ...) use the built-in one; code that must know custom types
// is given the live *Catalogue by its owner (package eventtypes, which keeps it
// in NATS) and calls its methods. An unknown type's error matches
// ErrUnknownType, so a caller can read a newer catalogue before refusing.
//
// # Catalogue and groups
//
// Every event type belongs to exactly one group:
//
//	group     system    types
//	cargo     tos       cargo_manifested, cargo_loaded, cargo_unloaded,
//	                    cargo_transferred_in, cargo_transferred_out,
//	                    container_resealed, container_stripped,
//	                    cargo_overlanded, cargo_overshipped, cargo_delivered,
//	                    cargo_stuffed
//	vessel    tos       voyage_created, voyage_updated, berth_request_approved
//	gate      tos       gate_selected, cargo_gated_in, cargo_gated_out,
//	                    truck_gated_out
//	reefer    tos       reefer_plugged_in, reefer_plugged_out
//	hold      tos       cargo_held, cargo_released, hold_applied, hold_lifted
//	rail      tos       train_departed, rail_cargo_loaded, rail_cargo_unloaded
//	yard      tos       cargo_yard_transfer
//	edi       tos       outbound_edi_failed
//	shipment  tms       shipment_booked, shipment_status_updated,
//	                    shipment_details_changed
//	loadplan  loadplan  load_plan_saved, load_plan_updated
//	operator  quaycast  endpoint_created, endpoint_updated, endpoint_deleted,
//	                    endpoint_disabled, breaker_opened, breaker_closed,
//	                    dead_letter_recorded
//
// The 29 terminal (tos) events are those of the terminal operating system's
// webhook catalogue, in its order; Catalogue returns them first, then the
// transport-management and load-planning events, then quaycast's own operator
// events.
//
// # Operator events
//
// The operator group is what happens to endpoints, stored by quaycast itself
// under quaycast.ops.<type> (an operator's endpoint) and
// quaycast.ops.<tenant>.<type> (a tenant's), of the reserved source "quaycast"
// (OpsSource), with the endpoint id as the entity. Only selectors naming them
// select them: "quaycast:*", "group:operator", a type ("breaker_opened"),
// each also written after "quaycast:"; "*" and every other source's or
// group's selector never do, so endpoints subscribed before they existed do
// not receive them. An event of source "quaycast", or of an operator type,
// anywhere else is not delivered (ReservedReason), nor is a replay of one whose
// original was not stored on quaycast.ops.> (ReplayReservedReason).
package subjects
