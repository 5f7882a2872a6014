// Package redisserver runs a real redis-server on a free loopback port with
// the durability Nightcall needs (AOF, fsync on every write), for the tests
// (through redistest) and for `nightcall bench`.
package redisserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"time"

	"github.com/nightcall-health/nightcall/events/redis"
)

// Server is a running redis-server.
type Server struct {
	// URL is its redis:// URL.
	URL string
	cmd *exec.Cmd
}

// Start runs redis-server with its data in dir and waits until a Store can
// connect to it (at most 10 s).
func Start(dir string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is needed (Debian's redis-server package): %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
		"--appendfsync", "always", "--dir", dir, "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	srv := &Server{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), cmd: cmd}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := redis.Open(context.Background(), redis.Config{URL: srv.URL})
		if err == nil {
			s.Close()
			return srv, nil
		}
		if time.Now().After(deadline) {
			srv.Stop()
			return nil, errors.Join(errors.New("redis-server did not start within 10 s"), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server and waits for it to exit.
func (s *Server) Stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}
