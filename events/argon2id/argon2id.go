// Package argon2id hashes passwords with argon2id (OWASP's minimum: 19 MiB,
// t=2, p=1) in the PHC string format. Hasher is the account.Hasher Nightcall
// uses; it lives here, beside the other adapters, so that escalation/account
// imports nothing but the standard library.
package argon2id

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Parameters of new hashes; Check reads them from each hash.
const (
	Time    = 2
	Memory  = 19 * 1024
	Threads = 1
	KeyLen  = 32
)

// Hasher is an account.Hasher with the parameters above.
type Hasher struct{}

// Hash implements account.Hasher.
func (Hasher) Hash(password string) (string, error) { return Hash(password) }

// Check implements account.Hasher.
func (Hasher) Check(hash, password string) bool { return Check(hash, password) }

// Hash returns a salted argon2id hash of password in the PHC string format.
func Hash(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("argon2id: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, Time, Memory, Threads, KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, Memory, Time, Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Check reports whether password matches a hash from Hash. A malformed hash
// matches nothing.
func Check(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want))) // #nosec G115 -- want is decoded from a stored hash string, far below 4 GiB
	return subtle.ConstantTimeCompare(got, want) == 1
}
