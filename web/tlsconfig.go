package web

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// CertReloader serves a certificate and key from files and picks them up
// again when either file changes (certificate renewal by certbot, Caddy or a
// cron job), without a restart. A renewal that fails to load keeps the last
// good pair, so a half-written file never takes the site down.
type CertReloader struct {
	certFile, keyFile string
	// checkEvery bounds how often the files' modification times are read.
	checkEvery time.Duration

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
	loadErr error
}

// NewCertReloader loads the pair once; an error here is a start-up error.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("web: TLS needs both a certificate and a key file")
	}
	r := &CertReloader{certFile: certFile, keyFile: keyFile, checkEvery: time.Second}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *CertReloader) fileStamp() (string, error) {
	var stamp string
	for _, f := range []string{r.certFile, r.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		stamp += fmt.Sprintf("%s:%d:%d;", f, st.ModTime().UnixNano(), st.Size())
	}
	return stamp, nil
}

func (r *CertReloader) reload() error {
	stamp, err := r.fileStamp()
	if err != nil {
		return fmt.Errorf("web: TLS files: %w", err)
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("web: TLS certificate %s / key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp = &c, stamp
	return nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= r.checkEvery {
		r.checked = time.Now()
		if stamp, err := r.fileStamp(); err == nil && stamp != r.stamp {
			r.loadErr = r.reload() // on failure the last good pair stays
		}
	}
	return r.cert, nil
}

// LastError is the last failed reload (nil when the current files loaded).
func (r *CertReloader) LastError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loadErr
}

// TLSConfig is Go's modern defaults (TLS 1.2 and 1.3, the standard library's
// own cipher order) with HTTP/2 offered, serving the reloader's certificate.
func (r *CertReloader) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}
