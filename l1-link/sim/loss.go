package sim

import "math/rand/v2"

// Loss is a loss model for one direction of one radio link. The zero value
// loses nothing.
type Loss struct {
	// P is the probability that a frame is lost, independently of others
	// (used when Bursty is false).
	P float64
	// Bursty selects the Gilbert–Elliott model: a two-state Markov chain
	// stepped once per frame, losing LossGood of frames in the good state and
	// LossBad in the bad one.
	Bursty                 bool
	PGoodToBad, PBadToGood float64
	LossGood, LossBad      float64
}

// Independent loses each frame with probability p.
func Independent(p float64) Loss { return Loss{P: p} }

// GilbertElliott is a bursty model: bad bursts last 1/pBadToGood frames on
// average and start with probability pGoodToBad per frame.
func GilbertElliott(pGoodToBad, pBadToGood, lossGood, lossBad float64) Loss {
	return Loss{Bursty: true, PGoodToBad: pGoodToBad, PBadToGood: pBadToGood, LossGood: lossGood, LossBad: lossBad}
}

// Mean is the long-run fraction of frames lost.
func (l Loss) Mean() float64 {
	if !l.Bursty {
		return l.P
	}
	if l.PGoodToBad+l.PBadToGood == 0 {
		return l.LossGood
	}
	bad := l.PGoodToBad / (l.PGoodToBad + l.PBadToGood)
	return bad*l.LossBad + (1-bad)*l.LossGood
}

// lossState is the per-direction state of a model.
type lossState struct {
	model Loss
	bad   bool
}

// lost steps the model by one frame and reports whether it is lost.
func (s *lossState) lost(r *rand.Rand) bool {
	m := &s.model
	if !m.Bursty {
		return m.P > 0 && r.Float64() < m.P
	}
	if s.bad {
		if r.Float64() < m.PBadToGood {
			s.bad = false
		}
	} else if r.Float64() < m.PGoodToBad {
		s.bad = true
	}
	p := m.LossGood
	if s.bad {
		p = m.LossBad
	}
	return p > 0 && r.Float64() < p
}
