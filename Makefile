# Nightcall. `make test` is what CI runs (.ci/run) and what the README gives.
GO ?= go

.PHONY: test deps vet bench run

test: deps vet
	$(GO) test -race -count=1 -timeout 30m ./...

# deps installs what the tests need when it is missing (Debian; run as root):
# gcc for the race detector, Chromium for the browser tests, redis-server for
# the distributed store, iproute2 and nftables for the network-namespace tests.
deps:
	@missing=""; \
	command -v gcc >/dev/null || missing="$$missing gcc"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v nft >/dev/null || missing="$$missing nftables"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3000x ./events/sqlite/
	$(GO) run ./cmd/nightcall bench append

run:
	$(GO) run ./cmd/nightcall serve --demo
