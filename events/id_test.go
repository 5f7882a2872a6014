package events

import (
	"testing"

	"github.com/google/uuid"
)

func TestDeterministicID(t *testing.T) {
	a, b := DeterministicID("page-1|received|device-1"), DeterministicID("page-1|received|device-1")
	if a != b {
		t.Fatalf("the same name gave %s and %s", a, b)
	}
	if c := DeterministicID("page-1|seen|device-1"); c == a {
		t.Fatalf("different names gave the same ID %s", c)
	}
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 5 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("%s is not an RFC 4122 version 5 UUID (%v)", a, err)
	}
}
