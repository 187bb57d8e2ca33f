// Package eventtypes owns the live event catalogue: the built-in types of package subjects plus
// the custom types a port community adds at run time, stored in the KV bucket
// quaycast_event_types so that every gateway sees them. A Store watches the bucket and holds the
// current *subjects.Catalogue; what must know custom types (ingest, the envelope check, endpoint
// selectors and filters, the sender's display names) is given the Store and asks it, and re-reads
// it with Refresh before refusing a type it does not know — another gateway may have just added
// it. subjects stays free of NATS: it gets the catalogue as a value.
package eventtypes
