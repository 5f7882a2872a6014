package video

import (
	"errors"
	"strings"
	"testing"
)

const seedAnswer = "v=0\r\no=- 4215775240449105457 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\na=rtpmap:96 VP8/90000\r\n"

func TestCheckAnswer(t *testing.T) {
	if err := CheckAnswer(seedAnswer); err != nil {
		t.Fatalf("a browser-shaped answer was refused: %v", err)
	}
	many := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" + strings.Repeat("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", 40)
	for name, s := range map[string]string{"empty": "", "not SDP": "hello", "too large": seedAnswer + strings.Repeat("a=x\r\n", MaxSDP/5), "40 m-lines": many} {
		if err := CheckAnswer(s); !errors.Is(err, ErrBadSDP) {
			t.Errorf("%s: %v, want ErrBadSDP", name, err)
		}
	}
}

// FuzzCheckAnswer: any string is refused with ErrBadSDP or accepted; it
// never panics, and nothing over MaxSDP is accepted.
func FuzzCheckAnswer(f *testing.F) {
	f.Add(seedAnswer)
	f.Add("v=0\r\n")
	f.Add("m=video 9 UDP/TLS/RTP/SAVPF 96\r\n")
	f.Add(strings.Repeat("a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n", 3))
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckAnswer(s)
		if err != nil && !errors.Is(err, ErrBadSDP) {
			t.Fatalf("error not wrapping ErrBadSDP: %v", err)
		}
		if err == nil && len(s) > MaxSDP {
			t.Fatal("an answer over MaxSDP was accepted")
		}
	})
}
