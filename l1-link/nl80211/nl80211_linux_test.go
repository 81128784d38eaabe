package nl80211

import (
	"errors"
	"net"
	"os"
	"testing"

	"github.com/mdlayher/genetlink"
)

// On a kernel without cfg80211 (this machine, CI) the family is absent and
// the error says so; with it, the loopback interface is not Wi-Fi. Either
// way lo is never taken down: the check comes first.
func TestNotWireless(t *testing.T) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		t.Fatalf("generic netlink: %v", err)
	}
	_, ferr := c.GetFamily(familyName)
	c.Close()
	want := ErrNotWireless
	if errors.Is(ferr, os.ErrNotExist) {
		want = ErrNoFamily
	}
	if err := SetMonitor("lo", Monitor{Channel: 1}); !errors.Is(err, want) {
		t.Fatalf("SetMonitor(lo): %v, want %v", err, want)
	}
	if err := SetChannel("lo", 1); !errors.Is(err, want) && !errors.Is(err, ErrNoFamily) {
		t.Fatalf("SetChannel(lo): %v, want %v", err, want)
	}
	if _, err := Get("lo"); !errors.Is(err, want) {
		t.Fatalf("Get(lo): %v, want %v", err, want)
	}
	ifi, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if ifi.Flags&net.FlagUp == 0 {
		t.Fatal("lo is down after the refused switch")
	}
}
