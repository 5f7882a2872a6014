package eventstest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/nightcall-health/nightcall/events"
)

// StateCodecHolds is the body of a fuzz target for a snapshot state codec:
// data either decodes, or is refused with events.ErrStateCorrupt; what
// decodes encodes, reads back, and encodes again to the same bytes.
func StateCodecHolds[S any](t *testing.T, data []byte, decode func([]byte) (S, error), encode func(*S) ([]byte, error)) {
	t.Helper()
	st, err := decode(data)
	if err != nil {
		if !errors.Is(err, events.ErrStateCorrupt) {
			t.Fatalf("not ErrStateCorrupt: %v", err)
		}
		return
	}
	once, err := encode(&st)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decode(once)
	if err != nil {
		t.Fatalf("a state read does not read back: %v", err)
	}
	twice, err := encode(&back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(once, twice) {
		t.Fatal("re-encoding a state read is not stable")
	}
}
