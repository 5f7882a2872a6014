package main

import (
	"context"
	"errors"
	"testing"
)

// failingWriter is a stdout that refuses every write, as a full disk or a
// closed pipe does.
type failingWriter struct{}

var errWriteRefused = errors.New("write refused")

func (failingWriter) Write([]byte) (int, error) { return 0, errWriteRefused }

// TestAuditCLIReportsAWriteError: figures that could not be written are a
// failed command (non-zero exit), never a silent success with nothing out.
func TestAuditCLIReportsAWriteError(t *testing.T) {
	dir := t.TempDir()
	for _, format := range []string{"table", "csv"} {
		err := auditCmd(context.Background(), []string{"--data-dir", dir, "--format", format}, failingWriter{})
		if !errors.Is(err, errWriteRefused) {
			t.Errorf("--format %s to a failing stdout: %v, want the write error", format, err)
		}
	}
}
