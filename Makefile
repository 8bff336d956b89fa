# parley — make demo, make test, make bench. Needs Go (see go.mod) and, for
# one test, python3 (a standard Maildir reader); .ci/run installs both.

GO     ?= go
PARLEY := bin/parley
ROOT   ?= mailboxes
export PARLEY_ROOT := $(ROOT)

.PHONY: build demo test bench lint fuzz clean

build:
	$(GO) build -o $(PARLEY) ./cmd/parley

# The mailbox at work on the default root: a team initialised (or kept, if
# it exists), a request and a quote delivered as files, the inbox listed,
# the ledger shown and verified. Safe to run again and again.
demo: build
	@$(PARLEY) init
	@printf 'From: inventory\nTo: procurement\nVerb: REQUEST\nItem: widget\nQuantity: 500\nDeliver-By: 2026-12-04\nSubject: REQUEST: need 500 widget by Friday\n\nStock of widget is 40, below the reorder point of 100.\n' \
		| $(PARLEY) send --json - > $(ROOT)/.demo-request.json
	@printf 'From: vendor-b\nTo: procurement\nIn-Reply-To: %s\nVerb: QUOTE\nItem: widget\nQuantity: 500\nUnit-Price: 4.80 USD\nDeliver-By: 2026-12-03\nSubject: QUOTE: 500 widget at 4.80 USD, delivered Thursday\n\nWe can ship from stock.\n' \
		"$$(sed -n 's/.*"msg_id":"\([^"]*\)".*/\1/p' $(ROOT)/.demo-request.json)" | $(PARLEY) send -
	@echo; echo "== parley inbox procurement"; $(PARLEY) inbox procurement --new
	@echo; echo "== parley tail -n 4"; $(PARLEY) tail -n 4
	@echo; echo "== parley ledger verify"; $(PARLEY) ledger verify

# The race detector sleeps a second as each process exits (atexit_sleep_ms);
# the CLI scripts start hundreds of processes, so it sleeps less here.
test:
	$(GO) vet ./...
	GORACE="atexit_sleep_ms=50" $(GO) test -race -count=1 ./...

# Each figure beside its floor (the bare system calls), from one run.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l . && false)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2025.1.1 ./...

# A short run of every fuzz target; failures land in testdata/fuzz.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./mailbox
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime 30s ./mailbox
	$(GO) test -run '^$$' -fuzz '^FuzzParseTeam$$' -fuzztime 30s ./agents
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./policy

clean:
	rm -rf bin
