package bench

import "testing"

func TestOwnedSpread(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		counts    map[string]int
		endpoints int
		lo, hi    int
		ok        bool
	}{
		{"none", nil, 0, 0, 0, true},
		{"even", map[string]int{"gw1": 4, "gw2": 4, "gw3": 4}, 12, 4, 4, true},
		{"one apart", map[string]int{"gw1": 5, "gw2": 4, "gw3": 3}, 12, 3, 5, false}, // 0.2·4+1 = 1.8
		{"two apart within 20 % of N/G + 1", map[string]int{"gw1": 7, "gw2": 5}, 12, 5, 7, true},
		{"a member owning nothing", map[string]int{"gw1": 3, "gw2": 0}, 3, 0, 3, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi, ok := ownedSpread(tc.counts, tc.endpoints)
			if lo != tc.lo || hi != tc.hi || ok != tc.ok {
				t.Errorf("got %d, %d, %v; want %d, %d, %v", lo, hi, ok, tc.lo, tc.hi, tc.ok)
			}
		})
	}
}
