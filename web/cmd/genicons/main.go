// Command genicons draws the console's app icons (a crescent moon on the
// service's blue) into web/static/icons, so the PWA manifest and iOS's
// apple-touch-icon need no image editor and no third-party artwork:
//
//	go run ./web/cmd/genicons
package main

import (
	"image"
	"image/color"
	"image/png"
	"log"
	"math"
	"os"
	"path/filepath"
)

var (
	blue  = color.RGBA{0x0b, 0x3d, 0x91, 0xff}
	white = color.RGBA{0xff, 0xff, 0xff, 0xff}
)

// moon draws a size×size icon. The crescent stays inside the middle 60% so
// that a maskable icon cropped to a circle keeps all of it.
func moon(size int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	s := float64(size)
	cx, cy, r := s*0.5, s*0.5, s*0.28
	ox, oy := cx+r*0.45, cy-r*0.3 // the disc that bites the moon
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			px, py := float64(x)+0.5, float64(y)+0.5
			c := blue
			if math.Hypot(px-cx, py-cy) <= r && math.Hypot(px-ox, py-oy) > r*0.85 {
				c = white
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func main() {
	dir := filepath.Join("web", "static", "icons")
	if err := os.MkdirAll(dir, 0o755); err != nil { // #nosec G301 -- public icons in the source tree
		log.Fatal(err)
	}
	for name, size := range map[string]int{"icon-192.png": 192, "icon-512.png": 512, "apple-touch-icon.png": 180} {
		f, err := os.Create(filepath.Join(dir, name)) // #nosec G304 -- fixed names under web/static/icons
		if err != nil {
			log.Fatal(err)
		}
		enc := png.Encoder{CompressionLevel: png.BestCompression}
		if err := enc.Encode(f, moon(size)); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
}
