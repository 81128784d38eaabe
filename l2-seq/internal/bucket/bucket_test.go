package bucket

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	b := Bucket{Burst: 3, Every: 10 * time.Millisecond}
	now := time.Unix(0, 0)
	for i := range 3 {
		if !b.Take(now) {
			t.Fatalf("token %d refused", i)
		}
	}
	if b.Take(now) {
		t.Fatal("a fourth token at once")
	}
	if b.Take(now.Add(9 * time.Millisecond)) {
		t.Fatal("a token before its time")
	}
	if !b.Take(now.Add(10*time.Millisecond)) || b.Take(now.Add(10*time.Millisecond)) {
		t.Fatal("one token after one period")
	}
	// A long rest fills the bucket to its burst, no more.
	later := now.Add(time.Hour)
	n := 0
	for b.Take(later) {
		n++
	}
	if n != 3 {
		t.Fatalf("%d tokens after a rest, want 3", n)
	}
}
