# parley — make demo, make test, make bench. Needs Go (see go.mod); two
# tests use python3 (a standard Maildir reader) and chromium (the thread
# page in a browser): .ci/run installs them, and without chromium that one
# test says so and skips.

GO     ?= go
PARLEY := bin/parley
ROOT   ?= mailboxes
export PARLEY_ROOT := $(ROOT)

.PHONY: build demo test bench lint fuzz clean

build:
	$(GO) build -o $(PARLEY) ./cmd/parley

# The restock story on the default root, with every agent a process of its
# own: initialised if needed, kept otherwise; safe to run again and again.
demo: build
	@$(PARLEY) demo

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
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# A short run of every fuzz target; failures land in testdata/fuzz.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./mailbox
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime 30s ./mailbox
	$(GO) test -run '^$$' -fuzz '^FuzzVerifySignature$$' -fuzztime 30s ./mailbox
	$(GO) test -run '^$$' -fuzz '^FuzzParseTeam$$' -fuzztime 30s ./agents
	$(GO) test -run '^$$' -fuzz '^FuzzParseScenario$$' -fuzztime 30s ./agents
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./policy

clean:
	rm -rf bin
