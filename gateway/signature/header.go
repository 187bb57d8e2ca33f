package signature

// HeaderName returns the header a Signer for p and o writes its signature in — what
// Signer.HeaderName returns — without a secret, for checks made when an endpoint is saved; "" if p
// is not a profile.
func (p Profile) HeaderName(o Options) string {
	p, err := p.resolve()
	if err != nil {
		return ""
	}
	return p.headerName(o)
}
