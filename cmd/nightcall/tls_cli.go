package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tlsCmd is `nightcall tls self-signed --host NAME [--out DIR] [--days N]`:
// a certificate for a LAN pilot, where no public CA can issue one. A tablet
// gets its camera only on a secure origin, so even a pilot needs HTTPS.
func tlsCmd(_ context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "self-signed" {
		return errors.New("usage: nightcall tls self-signed --host NAME[,NAME...] [--out DIR] [--days N]")
	}
	fs := flag.NewFlagSet("tls self-signed", flag.ContinueOnError)
	hosts := fs.String("host", "", "host names or IP addresses the certificate is for (comma-separated, required)")
	out := fs.String("out", ".", "directory to write nightcall.crt and nightcall.key into")
	days := fs.Int("days", 397, "days the certificate is valid (browsers refuse more than 398)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var names []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			names = append(names, h)
		}
	}
	if len(names) == 0 {
		return errors.New("tls self-signed: --host is required (the name the tablets will open, e.g. nightcall.rose-court.lan)")
	}
	if *days < 1 || *days > 398 {
		return errors.New("tls self-signed: --days must be 1–398")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{"Nightcall pilot"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(0, 0, *days),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// A CA certificate for itself, so a tablet can install it as a
		// trusted root (iOS and Android will not trust a leaf on its own).
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	// The directory and the certificate are public (every tablet gets the
	// certificate); only the key is private.
	if err := os.MkdirAll(*out, 0o755); err != nil { // #nosec G301 -- holds a public certificate; the key is 0600
		return err
	}
	certPath, keyPath := filepath.Join(*out, "nightcall.crt"), filepath.Join(*out, "nightcall.key")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil { // #nosec G306 -- a certificate is public
		return err
	}
	if err := writePrivate(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return err
	}
	fp := sha256.Sum256(der)
	fmt.Fprintf(stdout, `Wrote %s and %s (key readable by this user only), valid until %s for %s.
SHA-256 fingerprint: %X

Serve with:
  nightcall serve --addr 0.0.0.0:8443 --tls-cert %s --tls-key %s

Trust it on each tablet and phone (once), then open https://%s:8443:
  iPad / iPhone: send nightcall.crt to the device (AirDrop or mail), open it, install the
    profile in Settings > General > VPN & Device Management, then turn it on in
    Settings > General > About > Certificate Trust Settings.
  Android: Settings > Security > Encryption & credentials > Install a certificate >
    CA certificate, and choose nightcall.crt.
  Windows / ChromeOS PC: import nightcall.crt as a trusted root certification authority.
Check the fingerprint above on the device before you trust it. For anything beyond a LAN
pilot use a certificate from a public CA, or TLS at a reverse proxy (see the README).
`, certPath, keyPath, tmpl.NotAfter.UTC().Format("2006-01-02"), strings.Join(names, ", "), fp, certPath, keyPath, names[0])
	return nil
}

// writePrivate writes data to path readable by this user only, also when
// path already exists with a looser mode (os.WriteFile keeps an existing
// file's mode): the file is emptied, made 0600, and only then written.
func writePrivate(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600) // #nosec G304 -- the operator's own --out
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
