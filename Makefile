# reflex: build, test, lint, bench, fuzz.
GO       ?= go
TESTFLAGS ?=
PKGS     ?= ./...
FUZZTIME ?= 30s
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# Local services the integration tests use (override to point elsewhere).
export REFLEX_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export REFLEX_TEST_NATS_URL     ?= nats://127.0.0.1:4222

.PHONY: build test test-short lint bench fuzz clean

build:
	CGO_ENABLED=0 $(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/reflex ./cmd/reflex

# The test command of the README: every test, with the race detector, with
# the PostgreSQL and external NATS integration tests against local services.
test:
	$(GO) test -race -timeout 20m $(TESTFLAGS) $(PKGS)

# Unit tests only: integration tests that need PostgreSQL or NATS skip.
test-short:
	env -u REFLEX_TEST_DATABASE_URL -u REFLEX_TEST_NATS_URL $(GO) test -short $(PKGS)

lint:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "run gofmt -w"; exit 1)
	@command -v golangci-lint >/dev/null && golangci-lint run || echo "golangci-lint not installed: skipped (go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@latest)"

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/ingest/webhook
	$(GO) test -run '^$$' -fuzz '^FuzzParseSeverity$$' -fuzztime $(FUZZTIME) ./internal/event
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/config
	$(GO) test -run '^$$' -fuzz '^FuzzNormalize$$' -fuzztime $(FUZZTIME) ./internal/ingest/webhook
	$(GO) test -run '^$$' -fuzz '^FuzzParseAssets$$' -fuzztime $(FUZZTIME) ./internal/enrich

clean:
	rm -rf bin reflex-data
