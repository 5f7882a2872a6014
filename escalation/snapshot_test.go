package escalation

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"testing"
)

// pngHeader is a PNG signature and IHDR chunk claiming w×h pixels.
func pngHeader(w, h uint32) []byte {
	var ihdr bytes.Buffer
	ihdr.WriteString("IHDR")
	_ = binary.Write(&ihdr, binary.BigEndian, w)
	_ = binary.Write(&ihdr, binary.BigEndian, h)
	ihdr.Write([]byte{8, 2, 0, 0, 0})
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	_ = binary.Write(&out, binary.BigEndian, uint32(ihdr.Len()-4))
	out.Write(ihdr.Bytes())
	_ = binary.Write(&out, binary.BigEndian, crc32.ChecksumIEEE(ihdr.Bytes()))
	return out.Bytes()
}

func TestCheckImage(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 40, 30))
	var j, p bytes.Buffer
	if err := jpeg.Encode(&j, img, nil); err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(&p, img); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		typ  ImageType
		err  error
	}{
		{"jpeg", j.Bytes(), ImageJPEG, nil},
		{"png", p.Bytes(), ImagePNG, nil},
		{"png header only", pngHeader(640, 480), ImagePNG, nil},
		{"empty", nil, "", ErrNotAnImage},
		{"text", []byte("hello"), "", ErrNotAnImage},
		{"gif", []byte("GIF89a\x01\x00\x01\x00"), "", ErrNotAnImage},
		{"jpeg magic, no header", []byte("\xff\xd8\xff\xe0garbage"), "", ErrNotAnImage},
		{"png magic, no header", []byte("\x89PNG\r\n\x1a\n"), "", ErrNotAnImage},
		{"huge png", pngHeader(100000, 10), "", ErrNotAnImage},
		{"zero-width png", pngHeader(0, 10), "", ErrNotAnImage},
		{"over 2 MiB", append(j.Bytes(), make([]byte, MaxSnapshotBytes)...), "", ErrSnapshotTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			typ, cfg, err := CheckImage(c.data)
			if !errors.Is(err, c.err) || typ != c.typ {
				t.Fatalf("got %q %v, want %q %v", typ, err, c.typ, c.err)
			}
			if err == nil && (cfg.Width <= 0 || cfg.Height <= 0) {
				t.Errorf("size %dx%d", cfg.Width, cfg.Height)
			}
		})
	}
}

func TestCallInProgressFollowsTheLastCallEvent(t *testing.T) {
	esc := &EscalationView{}
	for _, c := range []struct {
		add  string
		want bool
	}{
		{"", false}, {TypeCallStarted, true}, {TypeSnapshotTaken, true}, {TypeCallEnded, false}, {TypeCallStarted, true},
	} {
		if c.add != "" {
			esc.Timeline = append(esc.Timeline, TimelineEntry{Type: c.add})
		}
		if got := callInProgress(esc); got != c.want {
			t.Errorf("after %q: %v, want %v", c.add, got, c.want)
		}
	}
}
