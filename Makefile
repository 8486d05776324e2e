# reflex: build, test, lint, bench, fuzz.
GO       ?= go
TESTFLAGS ?=
PKGS     ?= ./...
FUZZTIME ?= 30s
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The golangci-lint release lint uses, installed by go install when missing
# (keep in step with .ci/run).
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT ?= $(shell command -v golangci-lint 2>/dev/null || echo "$$($(GO) env GOPATH)/bin/golangci-lint")

# Local services the integration tests use (override to point elsewhere).
export REFLEX_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export REFLEX_TEST_NATS_URL     ?= nats://127.0.0.1:4222
export REFLEX_TEST_MYSQL_DSN    ?= root@tcp(127.0.0.1:3306)/

.PHONY: build test test-short lint bench fuzz clean

build:
	CGO_ENABLED=0 $(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/reflex ./cmd/reflex

# The test command of the README: every test, with the race detector, with
# the PostgreSQL and external NATS integration tests against local services.
test:
	$(GO) test -race -timeout 20m $(TESTFLAGS) $(PKGS)

# Unit tests only: integration tests that need PostgreSQL or NATS skip.
test-short:
	env -u REFLEX_TEST_DATABASE_URL -u REFLEX_TEST_NATS_URL -u REFLEX_TEST_MYSQL_DSN $(GO) test -short $(PKGS)

# vet, gofmt and golangci-lint (.golangci.yml). golangci-lint is required:
# when it is missing it is installed at GOLANGCI_LINT_VERSION.
lint:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "run gofmt -w"; exit 1)
	@if [ ! -x "$(GOLANGCI_LINT)" ]; then \
		echo "golangci-lint not found: installing $(GOLANGCI_LINT_VERSION)"; \
		$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); \
	fi
	@v=$$("$(GOLANGCI_LINT)" version 2>/dev/null | sed -n 's/.*version v\{0,1\}\([0-9][0-9.]*\).*/\1/p'); \
		[ "v$$v" = "$(GOLANGCI_LINT_VERSION)" ] || echo "warning: $(GOLANGCI_LINT) is version $$v, CI uses $(GOLANGCI_LINT_VERSION)"
	"$(GOLANGCI_LINT)" run $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Every fuzz target of the repository (grep -rn 'func Fuzz'), each for
# FUZZTIME, one after the other (go test -fuzz takes one target at a time).
fuzz:
	@set -e; grep -rl --include='*_test.go' '^func Fuzz' internal cmd | while read -r f; do \
		dir=./$$(dirname "$$f"); \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$f"); do \
			echo "== $$t ($$dir)"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) "$$dir"; \
		done; \
	done

clean:
	rm -rf bin reflex-data
