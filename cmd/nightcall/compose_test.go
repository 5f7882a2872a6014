package main

import (
	"os"
	"strings"
	"testing"

	"github.com/nightcall-health/nightcall/events/redis/redistest"
)

// TestFirstAdminOnRedisAsInCompose is docker-compose.yml's first step: with
// NIGHTCALL_STORE=redis the admin commands use Redis, `user add` reads the
// password from standard input, and a server on that Redis (no demo data)
// lets the admin sign in.
func TestFirstAdminOnRedisAsInCompose(t *testing.T) {
	url := redistest.Start(t)
	t.Setenv("NIGHTCALL_STORE", "redis")
	t.Setenv("NIGHTCALL_REDIS_URL", url)
	out := mustCLI(t, "a-long-admin-password\n", "user", "add", "--username", "admin", "--name", "Service admin", "--role", "admin")
	if strings.Contains(out, "a-long-admin-password") {
		t.Fatal("the CLI echoed the password")
	}
	s := startServer(t, func(c *serveConfig) { c.Store, c.RedisURL, c.Demo = "redis", url, false })
	admin := newClient(t, s.base)
	admin.signIn("admin", "a-long-admin-password")
	if me := admin.do("GET", "/api/v1/me", nil).json(t); me["role"] != "admin" {
		t.Errorf("me: %v", me)
	}
	// No demo data on a production start.
	if homes := admin.do("GET", "/api/v1/care-homes", nil).list(t); len(homes) != 0 {
		t.Errorf("a start without --demo has homes: %v", homes)
	}
	// The compose file keeps the production shape: no demo, trusted proxy, TLS at the proxy.
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NIGHTCALL_TRUSTED_PROXIES", "reverse-proxy", "appendfsync\", \"always", "user add"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("docker-compose.yml lacks %q", want)
		}
	}
	if strings.Contains(string(b), "NIGHTCALL_DEMO") {
		t.Error("docker-compose.yml seeds demo data")
	}
}
