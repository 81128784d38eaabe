package node

import (
	"time"
)

// sendCache holds the Packages of sent sequences so that retransmission
// requests can be answered: those on the air, and for a while those that
// finished toward reference nodes (which ask late, PROTOCOL 11). It has a
// memory budget; under pressure finished entries go first, lowest priority
// and oldest first, then sends not yet started of lower priority than the
// newcomer.
type sendCache struct {
	budget  int
	bytes   int
	entries []*cacheEntry
}

type cacheEntry struct {
	o       *outSeq
	size    int
	expires time.Time // zero while the send is active
}

// reserve makes room for size bytes at priority prio, or fails.
func (c *sendCache) reserve(n *Node, size, prio int) error {
	if size > c.budget {
		return ErrNoMemory
	}
	now := n.clk.Now()
	c.expire(now)
	for c.bytes+size > c.budget {
		victim := -1
		for i, e := range c.entries {
			if e.expires.IsZero() {
				continue
			}
			if victim < 0 || e.o.prio < c.entries[victim].o.prio ||
				(e.o.prio == c.entries[victim].o.prio && e.expires.Before(c.entries[victim].expires)) {
				victim = i
			}
		}
		if victim >= 0 {
			c.drop(victim)
			continue
		}
		// Only live sends left: give up a lower-priority one not yet started.
		for i := len(c.entries) - 1; i >= 0; i-- {
			if e := c.entries[i]; !e.o.started && e.o.prio < prio {
				victim = i
				break
			}
		}
		if victim < 0 {
			return ErrNoMemory
		}
		c.entries[victim].o.finish(ErrNoMemory)
	}
	return nil
}

func (c *sendCache) add(o *outSeq) {
	c.entries = append(c.entries, &cacheEntry{o: o, size: len(o.pkg)})
	c.bytes += len(o.pkg)
	if n := o.ep.n; c.bytes > n.stats.PeakCacheBytes {
		n.stats.PeakCacheBytes = c.bytes
	}
}

func (c *sendCache) indexOf(o *outSeq) int {
	for i, e := range c.entries {
		if e.o == o {
			return i
		}
	}
	return -1
}

func (c *sendCache) remove(o *outSeq) {
	if i := c.indexOf(o); i >= 0 {
		c.drop(i)
	}
}

// retire keeps a finished sequence until expires.
func (c *sendCache) retire(o *outSeq, expires time.Time) {
	if i := c.indexOf(o); i >= 0 {
		c.entries[i].expires = expires
		n := o.ep.n
		n.clk.AfterFunc(expires.Sub(n.clk.Now()), func() { c.expire(n.clk.Now()) })
	}
}

func (c *sendCache) drop(i int) {
	c.bytes -= c.entries[i].size
	c.entries[i].o.pkg = nil
	c.entries = append(c.entries[:i], c.entries[i+1:]...)
}

func (c *sendCache) expire(now time.Time) {
	for i := 0; i < len(c.entries); {
		if e := c.entries[i]; !e.expires.IsZero() && !now.Before(e.expires) {
			c.drop(i)
			continue
		}
		i++
	}
}

// find returns the cached sequence sent to (link, addr) with seq_id id.
func (c *sendCache) find(ep *endpoint, id uint8) *outSeq {
	for i := len(c.entries) - 1; i >= 0; i-- {
		o := c.entries[i].o
		if o.ep == ep && o.started && o.seqID == id && o.pkg != nil {
			return o
		}
	}
	return nil
}
