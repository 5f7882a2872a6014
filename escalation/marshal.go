package escalation

import (
	"encoding/json"
	"fmt"
)

func marshal(e Event) (json.RawMessage, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", e.EventType(), err)
	}
	return b, nil
}
