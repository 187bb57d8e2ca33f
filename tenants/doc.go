// Package tenants owns the operator's customers as quaycast knows them: one record per tenant in
// the KV bucket quaycast_tenants (id, name, external id), which every gateway reads. A tenant's id
// is what events name in their "tenants" field and what goes into the subjects of the copies made
// for it (package subjects), so it is a subject token. Endpoints and API tokens point to a tenant
// by its id (packages consumer and tokens); the router asks Known before it copies an event.
package tenants
