package video

import "testing"

func rtpPacket(payload ...byte) []byte {
	return append([]byte{0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}, payload...)
}

func TestIsKeyframe(t *testing.T) {
	cases := []struct {
		name string
		mime string
		pkt  []byte
		want bool
	}{
		{"vp8 keyframe, no extension", "video/VP8", rtpPacket(0x10, 0x00), true},
		{"vp8 interframe", "video/VP8", rtpPacket(0x10, 0x01), false},
		{"vp8 continuation", "video/VP8", rtpPacket(0x00, 0x00), false},
		{"vp8 keyframe with 15-bit picture id", "video/VP8", rtpPacket(0x90, 0x80, 0x81, 0x02, 0x00), true},
		{"vp8 interframe with picture id and tl0", "video/VP8", rtpPacket(0x90, 0xc0, 0x05, 0x07, 0x01), false},
		{"h264 IDR", "video/H264", rtpPacket(0x65), true},
		{"h264 SPS", "video/H264", rtpPacket(0x67), true},
		{"h264 non-IDR slice", "video/H264", rtpPacket(0x61), false},
		{"h264 FU-A start of IDR", "video/H264", rtpPacket(0x7c, 0x85), true},
		{"h264 FU-A middle of IDR", "video/H264", rtpPacket(0x7c, 0x05), false},
		{"h264 STAP-A with SPS", "video/H264", rtpPacket(0x78, 0x00, 0x02, 0x67, 0x42), true},
		{"opus", "audio/opus", rtpPacket(0x10, 0x00), false},
		{"too short", "video/VP8", []byte{0x80, 96}, false},
	}
	for _, c := range cases {
		if got := isKeyframe(c.mime, c.pkt); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{UDPPort: 70000, TCPPort: -1, PublicIP: "not-an-ip"}).Validate(); err == nil {
		t.Fatal("bad config accepted")
	}
	if err := (Config{UDPPort: 40000, PublicIP: "203.0.113.7"}).Validate(); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
}
