// Package portal owns the tenants' portal links, single-use and short-lived, in the KV bucket
// quaycast_portal_links.
//
// A link's code is a random secret; the bucket keeps only its SHA-256, under which it stores the
// tenant and the session the link opens. Redeeming deletes the key on the condition that it is
// still the revision read, so two gateways cannot both accept one code; the bucket's age limit
// removes codes nobody redeemed.
package portal
