package cluster

import (
	"cmp"
	"hash/fnv"
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
		slices.SortFunc(mine, func(a, b string) int { return cmp.Or(cmp.Compare(score(m, b), score(m, a)), cmp.Compare(a, b)) })
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

// score ranks member m for endpoint ep: the same on every gateway, independent for each pair.
func score(m, ep string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(m))
	h.Write([]byte{0})
	h.Write([]byte(ep))
	return mix(h.Sum64())
}

// mix spreads FNV's weak low bits (splitmix64's finaliser), so that similar ids rank independently.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
