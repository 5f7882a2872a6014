// Package redistest starts a real redis-server for tests.
package redistest

import (
	"testing"

	"github.com/nightcall-health/nightcall/events/redis/redisserver"
)

// Start runs redis-server on a free loopback port with the durability
// Nightcall needs (AOF, fsync on every write) and returns its URL. The server
// is stopped when the test ends.
func Start(t testing.TB) string {
	t.Helper()
	srv, err := redisserver.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv.URL
}
