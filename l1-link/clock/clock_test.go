package clock

import (
	"context"
	"testing"
	"time"
)

func TestVirtualOrder(t *testing.T) {
	c := NewVirtual(time.Time{})
	var got []int
	c.AfterFunc(2*time.Second, func() { got = append(got, 3) })
	c.AfterFunc(time.Second, func() { got = append(got, 1) })
	c.AfterFunc(time.Second, func() {
		got = append(got, 2)
		// Scheduling from a callback at zero delay runs after what is already due.
		c.AfterFunc(0, func() { got = append(got, 25) })
	})
	stop := c.AfterFunc(1500*time.Millisecond, func() { got = append(got, 99) })
	if !stop.Stop() || stop.Stop() {
		t.Fatal("Stop should report pending exactly once")
	}
	n := c.RunUntil(Epoch.Add(10 * time.Second))
	want := []int{1, 2, 25, 3}
	if n != 4 || len(got) != 4 {
		t.Fatalf("ran %d: %v", n, got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
	if !c.Now().Equal(Epoch.Add(10 * time.Second)) {
		t.Fatalf("now %v", c.Now())
	}
}

func TestVirtualRunWhile(t *testing.T) {
	c := NewVirtual(time.Time{})
	count := 0
	var tick func()
	tick = func() { count++; c.AfterFunc(time.Millisecond, tick) }
	c.AfterFunc(0, tick)
	if !c.RunWhile(Epoch.Add(time.Hour), func() bool { return count < 1000 }) {
		t.Fatal("condition never met")
	}
	if got := c.Now().Sub(Epoch); got != 999*time.Millisecond {
		t.Fatalf("time advanced %v", got)
	}
	if c.RunWhile(Epoch.Add(2*time.Second), func() bool { return true }) {
		t.Fatal("deadline not honoured")
	}
}

func TestLoopSerial(t *testing.T) {
	l := NewLoop()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	results := make(chan int, 3)
	// Counter touched only from callbacks: the race detector checks seriality.
	counter := 0
	for i := range 100 {
		go l.AfterFunc(time.Duration(i%3)*time.Millisecond, func() {
			counter++
			if counter == 100 {
				results <- counter
			}
		})
	}
	if got := <-results; got != 100 {
		t.Fatal(got)
	}
	stopped := l.AfterFunc(time.Hour, func() { t.Error("stopped timer ran") })
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatal(err)
	}
}

func TestLoopRunsOnce(t *testing.T) {
	l := NewLoop()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	l.AfterFunc(0, func() { close(started) })
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	<-started
	if err := l.Run(context.Background()); err != ErrRunning {
		t.Fatalf("second Run: %v", err)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatal(err)
	}
}
