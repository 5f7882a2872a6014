package video

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" // #nosec G505 -- TURN REST credentials are HMAC-SHA1 by definition (draft-uberti-behave-turn-rest)
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TURN REST credentials (draft-uberti-behave-turn-rest, as coturn reads
// them): the username is "<unix expiry>:<opaque id>" and the credential is
// the base64 HMAC-SHA1 of the username keyed with the secret every instance
// (and an external coturn) shares. Nothing is stored: any instance checks a
// credential another minted.

// TURNCredential is one participant's short-lived TURN login.
type TURNCredential struct {
	Username   string
	Credential string
	Expires    time.Time
}

// ErrBadTURNUsername is a username that is not "<unix expiry>:<opaque id>".
var ErrBadTURNUsername = errors.New("video: bad TURN username")

// maxTURNUsername bounds a username; ours are about 30 characters.
const maxTURNUsername = 128

// NewTURNCredential mints a credential that expires at expires, with a
// random opaque id so that no two participants share one.
func NewTURNCredential(secret string, expires time.Time) (TURNCredential, error) {
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return TURNCredential{}, fmt.Errorf("video: TURN credential id: %w", err)
	}
	username := strconv.FormatInt(expires.Unix(), 10) + ":" + base64.RawURLEncoding.EncodeToString(id)
	return TURNCredential{Username: username, Credential: TURNPassword(secret, username), Expires: time.Unix(expires.Unix(), 0).UTC()}, nil
}

// TURNPassword is the credential for username under secret.
func TURNPassword(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ParseTURNUsername splits a username into its expiry and opaque id.
func ParseTURNUsername(username string) (time.Time, string, error) {
	if len(username) > maxTURNUsername {
		return time.Time{}, "", fmt.Errorf("%w: %d characters", ErrBadTURNUsername, len(username))
	}
	exp, id, ok := strings.Cut(username, ":")
	if !ok || id == "" {
		return time.Time{}, "", fmt.Errorf("%w: no opaque id", ErrBadTURNUsername)
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || secs <= 0 {
		return time.Time{}, "", fmt.Errorf("%w: expiry %q", ErrBadTURNUsername, exp)
	}
	return time.Unix(secs, 0).UTC(), id, nil
}
