package node

import "testing"

// A single sent again after a busy stretch (200 other packet_ids from the
// same sender in between) is still recognised; a restarted sender reusing
// a packet_id with another Package is not mistaken for a repeat; ids far
// behind the window are let through.
func TestSingleWindow(t *testing.T) {
	w := &singleWindow{hi: 99}
	if w.seen(100, 0xabc) {
		t.Fatal("first packet seen as a duplicate")
	}
	for pid := uint16(101); pid < 300; pid++ {
		if w.seen(pid, uint32(pid)) {
			t.Fatalf("packet %d seen as a duplicate", pid)
		}
	}
	if !w.seen(100, 0xabc) {
		t.Fatal("repeat of packet 100 after 199 others not recognised")
	}
	if !w.seen(299, 299) {
		t.Fatal("repeat of the newest packet not recognised")
	}
	if w.seen(250, 0xdead) {
		t.Fatal("another Package under a seen packet_id taken for a repeat")
	}
	if w.seen(30, 30) {
		t.Fatal("an id behind the window taken for a repeat")
	}
	// Wrapping around the 16-bit counter.
	w = &singleWindow{hi: 65530}
	for pid := uint16(65531); pid != 20; pid++ {
		w.seen(pid, uint32(pid))
	}
	if !w.seen(65533, 65533) || !w.seen(5, 5) {
		t.Fatal("repeats across the wrap not recognised")
	}
	// A jump of more than the window forgets everything behind.
	w.seen(5000, 1)
	if w.seen(4999, 4999) {
		t.Fatal("a packet never seen taken for a repeat after a jump")
	}
}
