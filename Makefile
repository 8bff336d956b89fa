# parley — make demo, make test, make bench. Needs Go (see go.mod); two
# tests use python3 (a standard Maildir reader) and chromium (the thread
# page in a browser): .ci/run installs them, and without chromium that one
# test says so and skips.

GO     ?= go
PARLEY := bin/parley
ROOT   ?= mailboxes
export PARLEY_ROOT := $(ROOT)

.PHONY: build demo test faults soak bench bench-ledger lint fuzz clean ollama-server ollama-smoke e2e-ollama

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
	GORACE="atexit_sleep_ms=50" $(GO) test -race -count=1 -timeout 20m ./...

# The JetStream soak at full length: 2,000 deals back to back and 500 at
# once, twenty vendors, one server (make test: 10 and 10). Hours.
soak:
	PARLEY_SOAK=2000,500 $(GO) test -count=1 -timeout 0 -run 'TestJetStreamSoak' -v ./cmd/parley

# The fault tests at full length: the JetStream server process killed -9
# in the middle of 20 deals (make test: 5), every agent of a deal killed -9
# and taken over on another root (make test: two of them), and the bridge
# killed -9 20 times in one deal (make test: 3).
faults:
	GORACE="atexit_sleep_ms=50" PARLEY_SERVER_KILLS=20 PARLEY_TAKEOVERS=all PARLEY_BRIDGE_KILLS=20 $(GO) test -race -count=1 -timeout 20m -run 'TestJetStreamServerKilled|TestJetStreamTakeover|TestBridgeMixedTeam' -v ./cmd/parley

# Each figure beside its floor (the bare system calls), from one run. The
# ledger's (EngineStart, Decide, OpenLedger) run on an empty root beside one
# of PARLEY_BENCH_LINES lines (default 1,000,000), made for the run: a few
# minutes more (docs/MAILBOX.md, "A ledger of years").
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

# Issue 18's table on a root of ten million lines, side by side with an
# empty one: every command, an agent's start and a deal, as processes. The
# big root (7 GB) is made once, in about a quarter of an hour, and kept in
# $(BENCH_ROOT) for the next run.
BENCH_ROOT ?= $(HOME)/.cache/parley-bench
bench-ledger:
	PARLEY_BENCH_LINES=10000000 PARLEY_BENCH_ROOT=$(BENCH_ROOT) $(GO) test -run '^$$' -bench LedgerScale -benchtime 3x -timeout 2h ./cmd/parley

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l . && false)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# A short run of every fuzz target; failures land in testdata/fuzz.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./mailbox
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime 30s ./mailbox
	$(GO) test -run '^$$' -fuzz '^FuzzLedgerReader$$' -fuzztime 30s ./mailbox
	$(GO) test -run '^$$' -fuzz '^FuzzMarshalBody$$' -fuzztime 30s ./mailbox
	$(GO) test -run '^$$' -fuzz '^FuzzVerifySignature$$' -fuzztime 30s ./mailbox
	$(GO) test -run '^$$' -fuzz '^FuzzParseTeam$$' -fuzztime 30s ./agents
	$(GO) test -run '^$$' -fuzz '^FuzzParseScenario$$' -fuzztime 30s ./agents
	$(GO) test -run '^$$' -fuzz '^FuzzModelAnswer$$' -fuzztime 30s ./agents
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./policy
	$(GO) test -run '^$$' -fuzz '^FuzzParseURL$$' -fuzztime 30s ./mailbox/jsteam

# A real Ollama server from the Go module proxy, the version in go.mod: cgo
# builds its llama.cpp (about 3 minutes on 2 cores). The module omits three
# vendored headers: Debian packages two, and internal/tinymodel/miniaudio is
# a stub for the third (audio input is not needed).
OLLAMA_VERSION = $(shell $(GO) list -m -f '{{.Version}}' github.com/ollama/ollama)
OLLAMA := .cache/ollama/bin/ollama

ollama-server: $(OLLAMA)

$(OLLAMA): go.mod
	@test -e /usr/include/nlohmann/json.hpp -a -e /usr/include/stb/stb_image.h || \
		{ apt-get update -qq && apt-get install -y -qq nlohmann-json3-dev libstb-dev; }
	GOBIN=$(abspath .cache/ollama/bin) CGO_CPPFLAGS="-I$(abspath internal/tinymodel)" \
		GOFLAGS=-mod=mod $(GO) install github.com/ollama/ollama@$(OLLAMA_VERSION)
	@touch $@

# The server above, offline, with a tiny random model, answering under a schema.
ollama-smoke: $(OLLAMA)
	internal/tinymodel/serve.sh $(OLLAMA)

# A whole deal with every agent but the human on an Ollama brain, each its
# own process, in both modes, against that real server and its tiny random
# model: its answers are nonsense, and every one must be handled safely.
e2e-ollama: $(OLLAMA)
	internal/tinymodel/serve.sh $(OLLAMA) env GORACE=atexit_sleep_ms=50 \
		$(GO) test -race -count=1 -timeout 28m -run '^TestOllamaDeal$$' -v ./cmd/parley

clean:
	rm -rf bin .cache
