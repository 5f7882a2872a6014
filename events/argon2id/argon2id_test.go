package argon2id_test

import (
	"strings"
	"testing"

	"github.com/nightcall-health/nightcall/events/argon2id"
)

func TestPasswordHashing(t *testing.T) {
	h, err := argon2id.Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash format: %s", h)
	}
	if !argon2id.Check(h, "correct horse battery") || argon2id.Check(h, "correct horse batterY") {
		t.Error("the hash does not tell the right password from a wrong one")
	}
	h2, _ := argon2id.Hash("correct horse battery")
	if h2 == h {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2id$v=19$m=1,t=1,p=1$!!$!!", "$bcrypt$x", "$argon2id$v=19$m=0,t=0,p=0$AAAA$AAAA"} {
		if argon2id.Check(bad, "x") {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
}
