package consumer

import (
	"time"

	"golang.org/x/time/rate"
)

// Each tenant's endpoints share one token bucket per gateway (Options.TenantRate): a tenant whose
// events flood in waits for its own tokens, and the others' lanes go on. The wait is taken just
// before a POST, in one of the endpoint's MaxInFlight places: its other lanes would wait for the
// same tenant's tokens.

// tenantLimiter is tenant's bucket, made on first use; nil for the operator's endpoints or
// without a limit.
func (m *Manager) tenantLimiter(tenant string) *rate.Limiter {
	if tenant == "" || m.o.TenantRate <= 0 {
		return nil
	}
	m.limMu.Lock()
	defer m.limMu.Unlock()
	l := m.limiters[tenant]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(m.o.TenantRate), max(m.o.TenantBurst, 1))
		m.limiters[tenant] = l
	}
	return l
}

// tenantWait waits for a token of the endpoint's tenant; false when the worker stops first.
func (w *worker) tenantWait(held *delivered) bool {
	if w.limiter == nil {
		return true
	}
	r := w.limiter.Reserve()
	d := r.Delay()
	if d == 0 {
		return true
	}
	w.settle(held) // the lane waits: what its run delivered is acked first
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.stop:
		r.Cancel()
		return false
	}
}
