package node

// sendCache holds the Packages of sequences being sent, so that lost
// packets can be sent again, within a memory budget. A Package leaves it
// when its send ends: our receivers confirm it first, and a reference
// receiver's late retransmission requests are never answered (PROTOCOL 11),
// so nothing is kept for them. Under pressure a newcomer takes the place of
// sends not yet started of lower priority.
type sendCache struct {
	budget  int
	bytes   int
	entries []*outSeq
}

// reserve makes room for size bytes at priority prio, or fails.
func (c *sendCache) reserve(size, prio int) error {
	if size > c.budget {
		return ErrNoMemory
	}
	for c.bytes+size > c.budget {
		victim := -1
		for i := len(c.entries) - 1; i >= 0; i-- {
			if o := c.entries[i]; !o.started && o.prio < prio {
				victim = i
				break
			}
		}
		if victim < 0 {
			return ErrNoMemory
		}
		c.entries[victim].finish(ErrNoMemory) // removes it
	}
	return nil
}

func (c *sendCache) add(o *outSeq) {
	c.entries = append(c.entries, o)
	c.bytes += len(o.pkg)
	if n := o.ep.n; c.bytes > n.stats.PeakCacheBytes {
		n.stats.PeakCacheBytes = c.bytes
	}
}

func (c *sendCache) remove(o *outSeq) {
	for i, e := range c.entries {
		if e == o {
			c.bytes -= len(o.pkg)
			o.pkg = nil
			c.entries = append(c.entries[:i], c.entries[i+1:]...)
			return
		}
	}
}

// find returns the sequence being sent to ep with seq_id id.
func (c *sendCache) find(ep *endpoint, id uint8) *outSeq {
	for i := len(c.entries) - 1; i >= 0; i-- {
		o := c.entries[i]
		if o.ep == ep && o.started && !o.finished && o.seqID == id {
			return o
		}
	}
	return nil
}
