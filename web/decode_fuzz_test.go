package web

import (
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"
)

var bodySeeds = []string{
	`{"resident_id":"rc-101","observations":{"respiration_rate":22,"spo2":93,"on_oxygen":false,"systolic_bp":104,"pulse":112,"consciousness":"A","temperature":38.4},"soft_signs":["breathless"],"sbard":{"situation":"More breathless"}}`,
	`{"resident_id":"rc-101","observations":{"respiration_rate":22,"spo2":93,"pulse":112,"consciousness":"A","temperature":38.4,"absent":{"systolic_bp":"refused"}},"sbard":{"situation":"s"}}`,
	`{"resident_id":"rc-101","soft_signs":["new_confusion"],"observations":{"consciousness":"A"},"sbard":{"situation":"s"}}`,
	`{"observations":{"temperature":1e400}}`,
	`{"observations":{"spo2":"93"}}`,
	`[[[[[[[[[[]]]]]]]]]]`,
	`{"a":1}{"b":2}`,
	``,
}

// FuzzRaiseBody feeds the API's JSON decoding and the raise validation any
// bytes: each either decodes and validates, or is refused with a 4xx API
// error; nothing panics and nothing is a 5xx.
func FuzzRaiseBody(f *testing.F) {
	for _, s := range bodySeeds {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req raiseRequest
		err := decodeBody(body, &req, false)
		if err == nil {
			_, err = parseRaise(req, now)
		}
		if err == nil {
			return
		}
		var ae *apiError
		if errors.As(err, &ae) {
			if ae.Status < 400 || ae.Status >= 500 {
				t.Fatalf("status %d for %q", ae.Status, body)
			}
			return
		}
		// Domain input errors are mapped to 4xx in one place (errors.go).
		if status := statusOf(err); status < 400 || status >= 500 {
			t.Fatalf("%v maps to %d for %q", err, status, body)
		}
	})
}

// FuzzPagerFrame: any frame decodes or is refused; nothing panics.
func FuzzPagerFrame(f *testing.F) {
	for _, s := range []string{`{"type":"received","page_id":"p1"}`, `{"type":"seen","page_id":""}`, `{"type":1}`, `null`, `[`, `{"page_id":` + "1" + `}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := parsePagerFrame(data)
		if err == nil && len(fr.PageID) > len(data) {
			t.Fatalf("page id longer than the frame: %q", data)
		}
	})
}

// FuzzSignalFrame: any signalling frame decodes with a type or is refused.
func FuzzSignalFrame(f *testing.F) {
	for _, s := range []string{`{"type":"answer","sdp":"v=0\r\n"}`, `{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}}`, `{"type":"bye"}`, `{"type":""}`, `{"candidate":{"sdpMLineIndex":-1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseSignal(data)
		if err == nil && m.Type == "" {
			t.Fatalf("accepted a frame with no type: %q", data)
		}
	})
}

// statusOf is the status writeError would choose for err.
func statusOf(err error) int {
	rec := &statusRecorder{header: http.Header{}}
	(&Server{log: slog.New(slog.DiscardHandler)}).writeError(rec, &http.Request{}, err)
	return rec.status
}

type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(s int)           { r.status = s }
