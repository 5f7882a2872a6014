# Nightcall. `make test` is what CI runs (.ci/run) and what the README gives.
GO ?= go

.PHONY: test deps vet bench run

test: deps vet
	$(GO) test -race -count=1 -timeout 30m ./...

# deps installs what the tests need when it is missing (Debian; run as root).
deps:
	@command -v gcc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc; }

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3000x ./events/sqlite/
	$(GO) run ./cmd/nightcall bench append

run:
	$(GO) run ./cmd/nightcall serve --demo
