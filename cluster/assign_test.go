package cluster

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"testing"
)

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

func counts(members []string, owners map[string]string) map[string]int {
	c := make(map[string]int, len(members))
	for _, m := range members {
		c[m] = 0
	}
	for _, m := range owners {
		c[m]++
	}
	return c
}

func spread(t *testing.T, members []string, owners map[string]string) {
	t.Helper()
	c := counts(members, owners)
	lo, hi := len(owners), 0
	for _, m := range members {
		lo, hi = min(lo, c[m]), max(hi, c[m])
	}
	if hi-lo > 1 {
		t.Fatalf("spread %d..%d over %v: %v", lo, hi, members, c)
	}
	for ep, m := range owners {
		if !slices.Contains(members, m) {
			t.Fatalf("%s assigned to %q, not a member", ep, m)
		}
	}
}

func moved(before, after map[string]string) map[string][2]string {
	out := make(map[string][2]string)
	for ep, a := range after {
		if b := before[ep]; b != a {
			out[ep] = [2]string{b, a}
		}
	}
	return out
}

func TestAssignSpreadsEvenlyFromNothing(t *testing.T) {
	for _, tc := range []struct{ members, endpoints int }{{1, 0}, {1, 5}, {3, 3}, {3, 10}, {4, 10}, {5, 1000}, {7, 3}} {
		t.Run(fmt.Sprintf("%dx%d", tc.members, tc.endpoints), func(t *testing.T) {
			members, eps := ids("m", tc.members), ids("ep", tc.endpoints)
			owners := assign(members, eps, nil)
			if len(owners) != len(eps) {
				t.Fatalf("%d of %d endpoints assigned", len(owners), len(eps))
			}
			spread(t, members, owners)
			// The same inputs in another order give the same answer on every gateway.
			rm, re := slices.Clone(members), slices.Clone(eps)
			slices.Reverse(rm)
			slices.Reverse(re)
			again := assign(rm, re, nil)
			if !maps.Equal(owners, again) {
				t.Fatalf("order of inputs changed the result")
			}
		})
	}
}

func TestAssignNoMembers(t *testing.T) {
	if got := assign(nil, ids("ep", 3), nil); len(got) != 0 {
		t.Fatalf("assigned %v with no members", got)
	}
}

func TestAssignKeepsWhatIsHeld(t *testing.T) {
	members, eps := ids("m", 3), ids("ep", 9)
	first := assign(members, eps, nil)
	if got := assign(members, eps, first); !maps.Equal(got, first) {
		t.Fatalf("a settled assignment moved: %v", moved(first, got))
	}
}

func TestAssignJoinMovesOnlyToTheNewcomer(t *testing.T) {
	for _, tc := range []struct{ members, endpoints int }{{1, 10}, {2, 7}, {3, 100}, {3, 3}, {9, 1000}} {
		t.Run(fmt.Sprintf("%dx%d", tc.members, tc.endpoints), func(t *testing.T) {
			members, eps := ids("m", tc.members), ids("ep", tc.endpoints)
			before := assign(members, eps, nil)
			joined := append(slices.Clone(members), "new")
			after := assign(joined, eps, before)
			spread(t, joined, after)
			for ep, mv := range moved(before, after) {
				if mv[1] != "new" {
					t.Errorf("%s moved %s → %s, not to the newcomer", ep, mv[0], mv[1])
				}
			}
			if want, got := tc.endpoints/len(joined), counts(joined, after)["new"]; got < want {
				t.Errorf("newcomer got %d endpoints, want at least %d", got, want)
			}
		})
	}
}

func TestAssignLeaveMovesOnlyTheLeaversEndpoints(t *testing.T) {
	members, eps := ids("m", 4), ids("ep", 101)
	before := assign(members, eps, nil)
	left := members[1:]
	after := assign(left, eps, before)
	spread(t, left, after)
	for ep, mv := range moved(before, after) {
		if mv[0] != members[0] {
			t.Errorf("%s moved %s → %s, but only %s left", ep, mv[0], mv[1], members[0])
		}
	}
}

func TestAssignNewAndDeletedEndpoints(t *testing.T) {
	members, eps := ids("m", 3), ids("ep", 30)
	before := assign(members, eps, nil)
	grown := append(slices.Clone(eps), "ep900", "ep901", "ep902", "ep903")
	after := assign(members, grown, before)
	spread(t, members, after)
	for ep, mv := range moved(before, after) {
		if mv[0] != "" {
			t.Errorf("%s moved %s → %s when endpoints were added", ep, mv[0], mv[1])
		}
	}
	// Endpoints deleted from one member: the others give it some back, and nothing else moves.
	var shrunk []string
	for _, ep := range grown {
		if before[ep] != members[0] {
			shrunk = append(shrunk, ep)
		}
	}
	final := assign(members, shrunk, after)
	spread(t, members, final)
}

// score is hash/fnv's 64-bit FNV-1a of member, a zero byte and endpoint, mixed: gateways of
// different versions must rank alike.
func TestScoreIsFNV1a(t *testing.T) {
	for _, c := range [][2]string{{"gw-a", "ep_1"}, {"", ""}, {"member-with-a-longer-name", "ep_00000000000009999"}} {
		h := fnv.New64a()
		h.Write([]byte(c[0]))
		h.Write([]byte{0})
		h.Write([]byte(c[1]))
		if got, want := score(c[0], c[1]), mix(h.Sum64()); got != want {
			t.Errorf("score(%q, %q) = %x, want %x", c[0], c[1], got, want)
		}
	}
}

// BenchmarkAssign is one reconcile's decision at 10,000 endpoints: one gateway holding them all
// (a single gateway, every 2 s), and three sharing them after a fourth joined.
func BenchmarkAssign(b *testing.B) {
	eps := make([]string, 10_000)
	for i := range eps {
		eps[i] = fmt.Sprintf("ep_%08d", i)
	}
	for _, members := range [][]string{{"gw-a"}, {"gw-a", "gw-b", "gw-c", "gw-d"}} {
		held := make(map[string]string, len(eps))
		for i, ep := range eps {
			held[ep] = members[i%max(len(members)-1, 1)] // the last member is new: it holds nothing
		}
		b.Run(fmt.Sprintf("members=%d", len(members)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				assign(members, eps, held)
			}
		})
	}
}
