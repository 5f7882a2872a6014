package video

import "strings"

// isKeyframe reports whether an RTP packet starts a keyframe (VP8 or H.264).
func isKeyframe(mime string, pkt []byte) bool {
	if len(pkt) < 12 {
		return false
	}
	// Skip the RTP header: fixed 12 bytes, CSRCs, and an extension.
	cc := int(pkt[0] & 0x0f)
	off := 12 + 4*cc
	if pkt[0]&0x10 != 0 {
		if len(pkt) < off+4 {
			return false
		}
		off += 4 + 4*(int(pkt[off+2])<<8|int(pkt[off+3]))
	}
	if len(pkt) <= off {
		return false
	}
	return isKeyframePayload(mime, pkt[off:])
}

// isKeyframePayload reports whether an RTP payload starts a keyframe.
func isKeyframePayload(mime string, payload []byte) bool {
	switch {
	case strings.EqualFold(mime, "video/VP8"):
		return vp8Keyframe(payload)
	case strings.EqualFold(mime, "video/H264"):
		return h264Keyframe(payload)
	}
	return false
}

// keyframesKnown reports whether isKeyframe can find this codec's
// keyframes: a layer switch waits for one only then.
func keyframesKnown(mime string) bool {
	return strings.EqualFold(mime, "video/VP8") || strings.EqualFold(mime, "video/H264")
}

func vp8Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	x, s, pid := p[0]&0x80 != 0, p[0]&0x10 != 0, p[0]&0x07
	if !s || pid != 0 {
		return false
	}
	i := 1
	if x {
		if len(p) < 2 {
			return false
		}
		ext := p[1]
		i = 2
		if ext&0x80 != 0 { // picture ID
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if ext&0x40 != 0 { // TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // TID / KEYIDX
			i++
		}
	}
	return len(p) > i && p[i]&0x01 == 0
}

func h264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch nal := p[0] & 0x1f; nal {
	case 5, 7:
		return true
	case 24: // STAP-A
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			if i+2 < len(p) {
				if t := p[i+2] & 0x1f; t == 5 || t == 7 {
					return true
				}
			}
			i += 2 + size
		}
	case 28: // FU-A: the start fragment carries the type
		return len(p) > 1 && p[1]&0x80 != 0 && (p[1]&0x1f == 5 || p[1]&0x1f == 7)
	}
	return false
}
