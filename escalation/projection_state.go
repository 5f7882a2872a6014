package escalation

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/nightcall-health/nightcall/events"
)

// ReadModelSnapshot names the read model's snapshot in the store.
const ReadModelSnapshot = "read-model"

// projectionState is everything the read model holds, as its snapshot
// keeps it (snapshot_codec.go writes every field, unexported ones too).
type projectionState struct {
	Pos       int64
	Residents map[ResidentID]*ResidentView
	EscIndex  map[EscalationID]ResidentID
	Homes     map[CareHomeID]CareHome
	Rota      Rota
	RotaLog   []rotaVersion
}

// stateVersion is bumped when apply changes what the same events build, or
// the state changes meaning, so that a snapshot taken by the older code is
// not restored. 2: residents are held as views, not write aggregates. 3: the
// hand-written binary form of snapshot_codec.go (a snapshot of the generic
// one is rebuilt from the log, never read as the new one).
const stateVersion = "3"

// StateSchema is the shape of the read model's snapshot: a snapshot taken
// by a build with other types is not restored.
func (p *Projection) StateSchema() string {
	return stateVersion + "-" + events.StateSchema(&projectionState{})
}

// MarshalState encodes the read model and returns the position it reflects.
// Events are not applied meanwhile.
func (p *Projection) MarshalState() (int64, []byte, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	st := projectionState{Pos: p.pos, Residents: p.residents, EscIndex: p.escIndex, Homes: p.homes, Rota: p.rota, RotaLog: p.rotaLog}
	data, err := encodeState(&st)
	if err != nil {
		return 0, nil, fmt.Errorf("escalation: read model snapshot: %w", err)
	}
	return p.pos, data, nil
}

// RestoreState replaces the read model with an encoded one, before any
// event is applied; the log after its position is then applied as usual.
func (p *Projection) RestoreState(data []byte) error {
	st, err := decodeState(data)
	if err != nil {
		return fmt.Errorf("escalation: restore the read model: %w", err)
	}
	p.mu.Lock()
	p.pos, p.residents, p.escIndex, p.homes, p.rota, p.rotaLog = st.Pos, st.Residents, st.EscIndex, st.Homes, st.Rota, st.RotaLog
	if p.residents == nil {
		p.residents = map[ResidentID]*ResidentView{}
	}
	if p.escIndex == nil {
		p.escIndex = map[EscalationID]ResidentID{}
	}
	if p.homes == nil {
		p.homes = map[CareHomeID]CareHome{}
	}
	p.reindex()
	p.mu.Unlock()
	p.at.Advance(st.Pos)
	return nil
}

// Digest is a digest of the whole read model: a model restored from a
// snapshot and brought up to a position has the digest of one rebuilt from
// the log to that position.
func (p *Projection) Digest() (string, error) {
	_, data, err := p.MarshalState()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}
