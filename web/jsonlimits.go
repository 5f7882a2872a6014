package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	// maxNumberLen bounds a JSON number's text: no observation, time or count
	// needs more, and an arbitrary-precision parse of a huge one costs seconds.
	maxNumberLen = 32
	// maxJSONDepth bounds object and array nesting.
	maxJSONDepth = 32
)

// checkJSONLimits scans body once, without parsing numbers, and refuses a
// number longer than maxNumberLen characters (400 invalid_value, naming the
// field), nesting deeper than maxJSONDepth (400 invalid_json), or text that
// is not UTF-8 (400 invalid_json: RFC 8259 8.1; encoding/json would store
// each bad byte as U+FFFD, changing what the caller sent). Malformed JSON is
// left for the decoder to report.
func checkJSONLimits(body []byte) error {
	if !utf8.Valid(body) {
		return newErr(http.StatusBadRequest, "invalid_json", "JSON text must be UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object  bool
		key     string
		index   int
		wantKey bool
	}
	var stack []frame
	path := func() string {
		var parts []string
		for _, f := range stack {
			if f.object {
				parts = append(parts, f.key)
			} else {
				parts = append(parts, strconv.Itoa(f.index))
			}
		}
		return strings.Join(parts, ".")
	}
	// value is called after each complete value inside the current frame.
	value := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].wantKey = true
			} else {
				stack[n-1].index++
			}
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return nil // the decoder reports malformed JSON precisely
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if k, ok := tok.(string); ok {
				stack[n-1].key, stack[n-1].wantKey = k, false
				continue
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) >= maxJSONDepth {
					return newErr(http.StatusBadRequest, "invalid_json", "The request body nests deeper than "+strconv.Itoa(maxJSONDepth)+" levels.")
				}
				stack = append(stack, frame{object: t == '{', wantKey: t == '{'})
			default:
				stack = stack[:len(stack)-1]
				value()
			}
		case json.Number:
			if len(t) > maxNumberLen {
				e := newErr(http.StatusBadRequest, "invalid_value", "Numbers are at most "+strconv.Itoa(maxNumberLen)+" characters long.")
				e.Field = path()
				return e
			}
			value()
		default:
			value()
		}
	}
}
