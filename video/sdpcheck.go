package video

import (
	"errors"
	"fmt"

	"github.com/pion/sdp/v3"
)

// MaxSDP bounds a browser's answer: a two-party call with simulcast is a few
// kilobytes; anything near this is not a browser's answer.
const MaxSDP = 64 << 10

// maxMediaSections bounds the m-lines of an answer: the server's own offer
// never has more (audio and video for each participant of a small call).
const maxMediaSections = 32

// ErrBadSDP is an answer that is not a well-formed session description this
// server could have asked for.
var ErrBadSDP = errors.New("video: bad SDP")

// CheckAnswer refuses an answer before Pion sees it: too large, not SDP, or
// with more media sections than any offer of ours.
func CheckAnswer(s string) error {
	_, err := parseAnswer(s)
	return err
}

// parseAnswer is CheckAnswer, returning the description it parsed.
func parseAnswer(s string) (*sdp.SessionDescription, error) {
	if len(s) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadSDP)
	}
	if len(s) > MaxSDP {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrBadSDP, len(s), MaxSDP)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	if len(d.MediaDescriptions) > maxMediaSections {
		return nil, fmt.Errorf("%w: %d media sections, at most %d", ErrBadSDP, len(d.MediaDescriptions), maxMediaSections)
	}
	return &d, nil
}
