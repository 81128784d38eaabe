package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l3-route/route"
)

// The dashboard's routed errors: what the router's counters added since
// the last sample, each once, and at most maxRoutedErrors kept.
func TestDashboardRoutedErrors(t *testing.T) {
	s := &dashSource{failed: map[uint8]uint64{}}
	at := time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)
	s.counted(route.Stats{Failed: map[uint8]uint64{1: 2, 5: 1}, NoRoute: 3}, at)
	want := []string{"2 routed send(s) of this node failed: no_route", "1 routed send(s) of this node failed: abandoned", "no route from here for 3 Package(s)"}
	if len(s.errs) != len(want) {
		t.Fatalf("errors %v", s.errs)
	}
	for i, w := range want {
		if s.errs[i].What != w || !s.errs[i].Time.Equal(at) {
			t.Fatalf("error %d: %+v, want %q", i, s.errs[i], w)
		}
	}
	// Nothing new: nothing added. One more failure: one entry.
	s.counted(route.Stats{Failed: map[uint8]uint64{1: 2, 5: 1}, NoRoute: 3}, at)
	s.counted(route.Stats{Failed: map[uint8]uint64{1: 3, 5: 1}, NoRoute: 3, HopLimit: 1}, at)
	if len(s.errs) != 5 || !strings.HasPrefix(s.errs[3].What, "1 routed send(s) of this node failed: no_route") || !strings.Contains(s.errs[4].What, "hop limit") {
		t.Fatalf("errors %v", s.errs)
	}
	for i := range 2 * maxRoutedErrors {
		s.note(at.Add(time.Duration(i)), "x")
	}
	if len(s.errs) != maxRoutedErrors || !s.errs[len(s.errs)-1].Time.Equal(at.Add(2*maxRoutedErrors-1)) {
		t.Fatalf("%d errors kept, last %v", len(s.errs), s.errs[len(s.errs)-1].Time)
	}
}
