package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
)

// idem handles the Idempotency-Key of one request. It is scoped to (user,
// method and path, key) and stored with the events the request produced.
type idem struct {
	key  string // scoped key, "" when the request carried none
	hash string
	// body is the first response as stored, set once the record is built.
	status int
	body   []byte
}

const maxIdempotencyKey = 200

func newIdem(r *http.Request, a *escalation.Actor, body []byte) (*idem, error) {
	k := r.Header.Get("Idempotency-Key")
	if k == "" {
		return &idem{}, nil
	}
	if len(k) > maxIdempotencyKey {
		return nil, &apiError{Status: http.StatusBadRequest, Code: "invalid_value", Field: "Idempotency-Key", Message: "The Idempotency-Key header is over 200 characters."}
	}
	sum := sha256.Sum256(withoutSecrets(body))
	return &idem{key: string(a.Username) + "|" + r.Method + " " + r.URL.Path + "|" + k, hash: hex.EncodeToString(sum[:])}, nil
}

// replay writes the stored response when this key was used before; it
// reports whether it answered.
func (s *Server) replay(w http.ResponseWriter, r *http.Request, id *idem) bool {
	if id.key == "" {
		return false
	}
	rec, err := s.cfg.Store.Idempotency(r.Context(), id.key)
	if errors.Is(err, events.ErrIdempotencyNotFound) {
		return false
	}
	if err != nil {
		s.writeError(w, r, err)
		return true
	}
	if rec.RequestHash != id.hash {
		s.writeError(w, r, newErr(http.StatusUnprocessableEntity, "idempotency_key_reused", "This Idempotency-Key was used with a different request body."))
		return true
	}
	w.Header().Set("Idempotent-Replayed", "true")
	if rec.Status == http.StatusNoContent {
		w.WriteHeader(rec.Status)
		return true
	}
	writeRaw(w, rec.Status, rec.Body)
	return true
}

// record returns the domain hook that stores the response with the events.
func (id *idem) record(status int, render func(r *escalation.ResidentView) any) escalation.IdemFunc {
	if id.key == "" {
		return nil
	}
	return func(r *escalation.ResidentView) (*events.IdempotencyRecord, error) {
		b, err := json.Marshal(render(r))
		if err != nil {
			return nil, err
		}
		id.status, id.body = status, b
		return &events.IdempotencyRecord{Key: id.key, RequestHash: id.hash, Status: status, Body: b}, nil
	}
}

// recordOf is record for a command on a stream other than a resident's: the
// stored body is render(result), result being the value the command returns.
func (id *idem) recordOf(status int, render func(result any) any) func(any) (*events.IdempotencyRecord, error) {
	if id.key == "" {
		return nil
	}
	return func(result any) (*events.IdempotencyRecord, error) {
		b := []byte{} // a 204 stores an empty body, never NULL
		if status != http.StatusNoContent {
			var err error
			if b, err = json.Marshal(render(result)); err != nil {
				return nil, err
			}
		}
		id.status, id.body = status, b
		return &events.IdempotencyRecord{Key: id.key, RequestHash: id.hash, Status: status, Body: b}, nil
	}
}

// respond writes the command's response: the stored bytes when a record was
// built (so a replay is byte-for-byte the same), else v. A concurrent twin
// that stored the key first is answered from its record.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, id *idem, err error, status int, v func() any) {
	if errors.Is(err, events.ErrIdempotencyKeyExists) {
		if s.replay(w, r, id) {
			return
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	if id.body != nil {
		writeRaw(w, id.status, id.body)
		return
	}
	writeJSON(w, status, v())
}

// withoutSecrets is body with a top-level "password" blanked, for hashing:
// the idempotency record keeps a hash of the request, and an unsalted
// SHA-256 of a password must never be stored. A repeat with the same key and
// another password is then answered as a replay, not refused.
func withoutSecrets(body []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	if _, ok := m["password"]; !ok {
		return body
	}
	m["password"] = json.RawMessage(`""`)
	b, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return b
}
