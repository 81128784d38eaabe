package espnow

import (
	"hash/crc32"
)

// dedupSize is how many recent frames the duplicate filter remembers. An
// ESP32 retransmits an unacknowledged unicast frame within milliseconds, so
// the copies of one frame arrive close together; 128 frames is seconds of
// traffic on a busy channel, and the memory is fixed whatever arrives.
const dedupSize = 128

// dupKey identifies a frame: its source, its random bytes (fresh for every
// frame a sender builds, the same in its retransmissions) and a checksum of
// its body, so that a sender whose random bytes repeat still gets distinct
// payloads through.
type dupKey struct {
	src    MAC
	random [4]byte
	sum    uint32
}

func keyOf(f *Frame) dupKey {
	return dupKey{src: f.Src, random: f.Random, sum: crc32.ChecksumIEEE(f.Body)}
}

// dedup is a fixed ring of recent frame keys. It is owned by the link's
// reader goroutine.
type dedup struct {
	keys [dedupSize]dupKey
	used int
	next int
}

// seen reports whether k is among the recent keys, and remembers it if not.
func (d *dedup) seen(k dupKey) bool {
	for i := range d.used {
		if d.keys[i] == k {
			return true
		}
	}
	d.keys[d.next] = k
	d.next = (d.next + 1) % dedupSize
	if d.used < dedupSize {
		d.used++
	}
	return false
}
