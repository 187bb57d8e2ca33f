package cluster

import (
	"cmp"
	"slices"
)

// assign decides which member owns each endpoint, from who holds what now. Every gateway computes
// it from the same shared state, so they agree once that state has settled; claims in the owners
// bucket, not this function, keep two gateways from running one endpoint.
//
// Each member may hold N/G endpoints, one more for the first N mod G members by what they hold
// now (so the counts differ by at most one). A member keeps what it holds up to that quota — the
// endpoints that rank it highest — and every endpoint left over goes to the member with room that
// ranks highest for it (rendezvous hashing). So a join moves endpoints only to the newcomer, and a
// leave only the leaver's endpoints: nothing moves that need not.
//
// members are the live members that take endpoints; held maps an endpoint to the member holding
// it (endpoints held by others are free). The result maps every endpoint to a member.
func assign(members, endpoints []string, held map[string]string) map[string]string {
	out := make(map[string]string, len(endpoints))
	if len(members) == 0 {
		return out
	}
	live := make(map[string][]string, len(members))
	for _, m := range members {
		live[m] = nil
	}
	var free []string
	for _, ep := range endpoints {
		m, ok := held[ep]
		if _, isLive := live[m]; ok && isLive {
			live[m] = append(live[m], ep)
		} else {
			free = append(free, ep)
		}
	}
	ranked := slices.Clone(members)
	slices.SortFunc(ranked, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(live[b]), len(live[a])), cmp.Compare(a, b))
	})
	n, g := len(endpoints), len(members)
	room := make(map[string]int, g)
	for i, m := range ranked {
		quota := n / g
		if i < n%g {
			quota++
		}
		mine := live[m]
		if len(mine) > quota { // ranked only when some must go: a member within its quota keeps all
			mine = byScore(m, mine)
		}
		keep := min(quota, len(mine))
		for _, ep := range mine[:keep] {
			out[ep] = m
		}
		free = append(free, mine[keep:]...)
		room[m] = quota - keep
	}
	slices.Sort(free)
	for _, ep := range free {
		best := ""
		for _, m := range ranked {
			if room[m] > 0 && (best == "" || score(m, ep) > score(best, ep)) {
				best = m
			}
		}
		out[ep] = best
		room[best]--
	}
	return out
}

// top is the member that ranks highest for a job; "" without members.
func top(members []string, job string) string {
	best := ""
	for _, m := range members {
		if best == "" || score(m, job) > score(best, job) {
			best = m
		}
	}
	return best
}

// byScore is eps ranked for member m, highest first (ties by id), each score computed once.
func byScore(m string, eps []string) []string {
	type ranked struct {
		ep    string
		score uint64
	}
	rs := make([]ranked, len(eps))
	for i, ep := range eps {
		rs[i] = ranked{ep, score(m, ep)}
	}
	slices.SortFunc(rs, func(a, b ranked) int { return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.ep, b.ep)) })
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ep
	}
	return out
}

// score ranks member m for endpoint ep: the same on every gateway, independent for each pair. It
// is 64-bit FNV-1a of m, a zero byte and ep (as hash/fnv computes it: gateways of different
// versions must agree), written out so that it allocates nothing.
func score(m, ep string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(m); i++ {
		h = (h ^ uint64(m[i])) * prime
	}
	h *= prime // the zero byte: h ^ 0 is h
	for i := 0; i < len(ep); i++ {
		h = (h ^ uint64(ep[i])) * prime
	}
	return mix(h)
}

// mix spreads FNV's weak low bits (splitmix64's finaliser), so that similar ids rank independently.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
