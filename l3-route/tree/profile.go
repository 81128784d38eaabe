package tree

import "time"

// Profile is what a mesh runs at on a link: the nodes' beacon period
// (node.Config.BeaconPeriod), the trees, their claim period and the length
// of a root's term, scaled to what the link's air can carry. The simulator
// (tools/meshsim, `sim route --link`) measures meshes at these and the
// daemon (`mycelium node`) runs at them, so both take them from here.
type Profile struct {
	// Name names the profile in logs and status: "default" or "lora".
	Name         string
	Beacon       time.Duration
	ClaimPeriod  time.Duration
	Trees        int
	EpochPeriods int
}

// DefaultProfile is for fast links (ESP-NOW, UDP): a beacon a minute, six
// trees claimed every 20 s, a new term every 45 claims (15 minutes). On
// ESP-NOW a claim takes 1.3 ms of air; this costs well under 1 % of it.
func DefaultProfile() Profile {
	return Profile{Name: "default", Beacon: time.Minute, ClaimPeriod: 20 * time.Second, Trees: 6, EpochPeriods: DefaultEpochPeriods}
}

// LoRaProfile is for a mesh on LoRa alone (SF9, 125 kHz: a claim takes
// 0.84 s of air). A node may send 1 % of the time (EU868: 36 s an hour)
// and control may take a tenth of that, about four frames an hour: a
// beacon an hour, one tree whose root claims once an hour, a new term
// every 336 claims (two weeks; failures renew it early). A root's death is
// then noticed in three hours, a parent's in a period and a half. The
// simulator's figures (README "Routing, measured") keep the busiest node
// of 100-node LoRa meshes within a tenth of its budget at these; with a
// term a week they did not.
func LoRaProfile() Profile {
	return Profile{Name: "lora", Beacon: time.Hour, ClaimPeriod: time.Hour, Trees: 1, EpochPeriods: 336}
}
