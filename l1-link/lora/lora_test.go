package lora

import (
	"errors"
	"math"
	"testing"
	"time"
)

// Reference figures from the Semtech LoRa calculator (SX1276 datasheet
// formula), explicit header, CRC on.
func TestAirtimeFormula(t *testing.T) {
	on := true
	cases := []struct {
		p    Params
		n    int
		want float64 // milliseconds
	}{
		// SF7/125k/4-5/P8, 10 bytes: Tsym 1.024 ms; (8+4.25)*1.024=12.544;
		// payload 8+ceil((80-28+28+16)/28)*5 = 8+4*5 = 28 syms = 28.672 -> 41.216 ms
		{Params{SF: 7, Bandwidth: 125000, CR: 1, Preamble: 8}, 10, 41.216},
		// SF9/125k/4-5/P12 (RYLR default), 240 bytes: Tsym 4.096 ms;
		// preamble 16.25*4.096 = 66.56; payload 8+ceil((1920-36+44)/36)*5 = 8+54*5 = 278 syms = 1138.688 -> 1205.248
		{Default, 240, 1205.248},
		// SF12/125k/4-5/P8 with LDRO (Tsym 32.768 ms), 20 bytes:
		// preamble 12.25*32.768 = 401.408; payload 8+ceil((160-48+44)/(4*10))*5 = 8+4*5 = 28 syms = 917.504 -> 1318.912
		{Params{SF: 12, Bandwidth: 125000, CR: 1, Preamble: 8}, 20, 1318.912},
		// Same, LDRO forced on explicitly: the same figure.
		{Params{SF: 12, Bandwidth: 125000, CR: 1, Preamble: 8, LDRO: &on}, 20, 1318.912},
		// SF7/500k/4-8/P8 implicit header no CRC, 1 byte: Tsym 0.256; preamble 3.136;
		// payload 8+max(ceil((8-28+28-20)/28),0)*8 = 8 syms = 2.048 -> 5.184
		{Params{SF: 7, Bandwidth: 500000, CR: 4, Preamble: 8, ImplicitHeader: true, NoCRC: true}, 1, 5.184},
	}
	for _, c := range cases {
		if err := c.p.Validate(); err != nil {
			t.Fatal(err)
		}
		got := float64(c.p.Airtime(c.n)) / float64(time.Millisecond)
		if math.Abs(got-c.want) > 0.001 {
			t.Errorf("%v, %d bytes: %.3f ms, want %.3f", c.p, c.n, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, p := range []Params{{SF: 4, Bandwidth: 125000, CR: 1, Preamble: 8}, {SF: 7, Bandwidth: 100000, CR: 1, Preamble: 8}, {SF: 7, Bandwidth: 125000, CR: 0, Preamble: 8}, {SF: 7, Bandwidth: 125000, CR: 1, Preamble: 2}} {
		if err := p.Validate(); !errors.Is(err, ErrParams) {
			t.Errorf("%+v: %v", p, err)
		}
	}
	if Default.String() != "SF9/BW125/CR4-5/P12" {
		t.Fatal(Default.String())
	}
	if br := Default.Bitrate(); br < 1750 || br > 1760 {
		t.Fatalf("SF9/125k bitrate %d, want ~1757", br)
	}
}

func TestDutyCycle(t *testing.T) {
	d := DutyCycle{Fraction: 0.01, Window: time.Hour} // 36 s per hour
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d.Budget() != 36*time.Second {
		t.Fatal(d.Budget())
	}
	frame := 1200 * time.Millisecond
	sent := 0
	for d.Allow(now, frame) {
		d.Spend(now, frame)
		sent++
		now = now.Add(2 * time.Second)
	}
	if sent != 30 { // 30 * 1.2 s = 36 s
		t.Fatalf("sent %d frames within the budget, want 30", sent)
	}
	w := d.Wait(now, frame)
	if w <= 0 || w > time.Hour {
		t.Fatalf("wait %v", w)
	}
	// Just before the wait ends it is still refused; at the end it is allowed.
	if d.Allow(now.Add(w-time.Second), frame) {
		t.Fatal("allowed before the wait ended")
	}
	if !d.Allow(now.Add(w), frame) {
		t.Fatalf("not allowed after waiting %v (used %v)", w, d.Used(now.Add(w)))
	}
	// After a full window everything is forgotten.
	if d.Used(now.Add(2*time.Hour)) != 0 {
		t.Fatal("budget not refreshed")
	}
	var off DutyCycle
	if !off.Allow(now, time.Hour) || off.Enabled() {
		t.Fatal("zero value must allow everything")
	}
	if d.Wait(now.Add(3*time.Hour), time.Hour) != time.Hour {
		t.Fatal("a frame over the whole budget never fits")
	}
}
