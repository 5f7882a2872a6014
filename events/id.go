package events

import "github.com/google/uuid"

// idSpace is the UUID name space of Nightcall's deterministic event IDs.
var idSpace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/nightcall-health/nightcall/events"))

// DeterministicID is the event ID of a fact that must be recorded once
// however often it is reported (two instances, a retried frame): a name-based
// UUID (version 5, SHA-1) of name, so the same name always gives the same ID
// and the store's append-by-ID idempotency turns a repeat into a no-op. name
// must hold everything that makes the fact distinct, and nothing else.
func DeterministicID(name string) string {
	return uuid.NewSHA1(idSpace, []byte(name)).String()
}
