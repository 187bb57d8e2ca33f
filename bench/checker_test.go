package bench

import "testing"

func TestChecker(t *testing.T) {
	type arrival struct{ endpoint, id string }
	tests := []struct {
		name     string
		arrivals []arrival
		want     Report
	}{
		{"all in order", []arrival{{"A", "a1"}, {"A", "b1"}, {"A", "a2"}, {"A", "a3"}}, Report{}},
		{"lost", []arrival{{"A", "a1"}, {"A", "a3"}, {"A", "b1"}}, Report{Lost: 1}},
		{"out of order", []arrival{{"A", "a2"}, {"A", "a1"}, {"A", "a3"}, {"A", "b1"}}, Report{OutOfOrder: 1}},
		{"other entities may interleave", []arrival{{"A", "b1"}, {"A", "a1"}, {"A", "a2"}, {"A", "a3"}}, Report{}},
		{"duplicate replayed in order is not out of order", []arrival{{"A", "a1"}, {"A", "a2"}, {"A", "a1"}, {"A", "a2"}, {"A", "a3"}, {"A", "b1"}}, Report{Duplicates: 2}},
		{"unexpected", []arrival{{"A", "a1"}, {"A", "a2"}, {"A", "a3"}, {"A", "b1"}, {"A", "zz"}, {"B", "a1"}}, Report{Unexpected: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChecker()
			for _, ev := range []struct{ id, entity string }{{"a1", "A"}, {"a2", "A"}, {"b1", "B"}, {"a3", "A"}} {
				c.Published(ev.id, ev.entity)
				c.Expect("A", ev.id)
			}
			for _, a := range tc.arrivals {
				c.Received(a.endpoint, a.id)
			}
			r := c.Report()
			if r.Lost != tc.want.Lost || r.Duplicates != tc.want.Duplicates || r.OutOfOrder != tc.want.OutOfOrder || r.Unexpected != tc.want.Unexpected {
				t.Errorf("got %v\nwant lost %d, duplicates %d, out of order %d, unexpected %d", r, tc.want.Lost, tc.want.Duplicates, tc.want.OutOfOrder, tc.want.Unexpected)
			}
			if tc.want.Lost > 0 {
				if got := r.Endpoints["A"].LostExamples; len(got) != 1 || got[0] != "a2 (#1 of A)" {
					t.Errorf("lost examples %q, want the lost event a2 named with its place", got)
				}
			}
			if r.OK() != (tc.want.Lost == 0 && tc.want.OutOfOrder == 0 && tc.want.Unexpected == 0) {
				t.Errorf("OK() = %v for %v", r.OK(), r)
			}
		})
	}
}
