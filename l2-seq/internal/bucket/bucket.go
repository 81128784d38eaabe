// Package bucket is a token bucket on an injected clock: what bounds the
// signatures and handshakes a flood of requests can cost a node.
package bucket

import "time"

// Bucket holds up to Burst tokens and gains one every Every.
type Bucket struct {
	Burst  int
	Every  time.Duration
	tokens int
	at     time.Time
	init   bool
}

// Take spends one token at now if there is one.
func (b *Bucket) Take(now time.Time) bool {
	if !b.init {
		b.tokens, b.at, b.init = b.Burst, now, true
	}
	if b.tokens >= b.Burst {
		b.at = now
	}
	if add := int(now.Sub(b.at) / b.Every); add > 0 {
		b.tokens = min(b.Burst, b.tokens+add)
		b.at = b.at.Add(time.Duration(add) * b.Every)
	}
	if b.tokens <= 0 {
		return false
	}
	b.tokens--
	return true
}
