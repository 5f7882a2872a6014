package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/nightcall-health/nightcall/events/redis/redisserver"
)

// benchPagingRedisScenario: raise → page across two instances sharing one
// real redis-server (the nurse raises on the first, every socket is on the
// second), beside the same with the raise and the sockets on one instance
// on its own redis-server. Both pagers run; the page is pushed by the
// instance holding the sockets when its pager applies the Paged event.
func benchPagingRedisScenario(ctx context.Context, env *benchEnv) ([]benchResult, error) {
	n, raises := env.sizes.RedisSockets, env.sizes.RedisRaises
	run := func(name string, instances int) ([]time.Duration, error) {
		dir := benchDir(env.dir, name)
		if err := os.MkdirAll(benchDir(dir, "redis"), 0o700); err != nil {
			return nil, err
		}
		srv, err := redisserver.Start(benchDir(dir, "redis"))
		if err != nil {
			return nil, err
		}
		defer srv.Stop()
		onRedis := func(c *serveConfig) { c.Store, c.RedisURL = "redis", srv.URL }
		raiser, err := startBenchInstance(ctx, benchDir(dir, "a"), onRedis)
		if err != nil {
			return nil, err
		}
		defer raiser.stop()
		holder := raiser
		if instances == 2 {
			if holder, err = startBenchInstance(ctx, benchDir(dir, "b"), onRedis); err != nil {
				return nil, err
			}
			defer holder.stop()
		}
		if err := raiser.prepare(ctx, holder, dir, n); err != nil {
			return nil, err
		}
		p, err := startClients(ctx, holder.pagerURL, n, holder.cookies)
		if err != nil {
			return nil, err
		}
		defer p.stop()
		if err := benchWait("pager sockets", time.Minute, func() bool { return holder.a.hub.Connections() >= n }); err != nil {
			return nil, err
		}
		return raiser.raiseAndCollect(p, n, raises)
	}
	one, err := run("redis-one", 1)
	if err != nil {
		return nil, fmt.Errorf("one instance: %w", err)
	}
	two, err := run("redis-two", 2)
	if err != nil {
		return nil, fmt.Errorf("two instances: %w", err)
	}
	slices.Sort(one)
	slices.Sort(two)
	p99, base99 := ms(pct(two, 99)), ms(pct(one, 99))
	r := result("paging-redis", fmt.Sprintf("raise → page across two instances on Redis, %d sockets, p99", n), "ms", p99,
		"one instance on Redis p99", base99, "≤ 1.5× one instance", met(p99 <= 1.5*base99))
	r.Params = map[string]any{"sockets": n, "raises": raises, "deliveries": len(two)}
	r.Extra = map[string]float64{"p50_ms": ms(pct(two, 50)), "max_ms": ms(two[len(two)-1]),
		"baseline_p50_ms": ms(pct(one, 50)), "baseline_max_ms": ms(one[len(one)-1])}
	return []benchResult{r}, nil
}
