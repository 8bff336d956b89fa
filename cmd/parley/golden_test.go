package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	stdhtml "html"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/mailbox"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/deal")

// TestRecordedDeal renders a deal recorded from a real run (the
// over-threshold scenario, testdata/deal/ledger.jsonl) through the reading
// commands, and compares each with its golden file.
func TestRecordedDeal(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	s, err := agents.LoadScenario("../../testdata/scenarios/over-threshold.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := prepareRoot(root, s); err != nil {
		t.Fatal(err)
	}
	ledger, err := os.ReadFile("../../testdata/deal/ledger.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "ledger.jsonl"), ledger, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PARLEY_NOW", "2026-11-26T21:00:00Z")
	t.Setenv("TZ", "UTC")
	if out, code := runCLI(t, "--root", root, "init"); code != 0 {
		t.Fatalf("init: %s", out)
	}
	tests := []struct {
		golden string
		args   []string
		code   int
	}{
		{"status.golden", []string{"status"}, 0},
		{"threads.golden", []string{"thread"}, 0},
		{"thread.golden", []string{"thread", "restock-gadget-1"}, 0},
		{"thread.mmd", []string{"thread", "restock-gadget-1", "--format", "mermaid"}, 0},
		{"thread.html", []string{"thread", "restock-gadget-1", "--format", "html"}, 0},
		{"tail.golden", []string{"tail", "-n", "+1"}, 0},
		{"tail-thread.golden", []string{"tail", "-n", "+1", "--thread", "restock-gadget-1", "--verb", "APPROVED"}, 0},
		{"why.golden", []string{"why", "--", "<42f77ba34e9884b1692ae97e.finance@parley>"}, 0},
		{"why-thread.golden", []string{"why", "restock-gadget-1"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			out, code := runCLI(t, append([]string{"--root", root}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.code, out)
			}
			out = bytes.ReplaceAll(out, []byte(root), []byte("ROOT"))
			path := filepath.Join("../../testdata/deal", tt.golden)
			if *update {
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("%s differs (go test ./cmd/parley -run TestRecordedDeal -update rewrites it):\n%s", tt.golden, out)
			}
		})
	}
}

func runCLI(t *testing.T, args ...string) ([]byte, int) {
	t.Helper()
	var out bytes.Buffer
	code := run(context.Background(), append([]string{"parley"}, args...), bytes.NewReader(nil), &out, &out)
	return out.Bytes(), code
}

// TestThreadPageInChromium opens the html of the recorded deal in a real
// browser (Debian's chromium, headless) and checks that the page shows
// every message of the thread.
func TestThreadPageInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is missing: .ci/run installs it")
		}
		t.Skip("chromium is not installed here: apt-get install chromium (CI installs it and runs this test)")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "thread.html")
	html, err := os.ReadFile("../../testdata/deal/thread.html")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, html, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--dump-dom", "file://"+page).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := stdhtml.UnescapeString(string(out))
	ledger, err := os.ReadFile("../../testdata/deal/ledger.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range bytes.Split(bytes.TrimSpace(ledger), []byte("\n")) {
		var e mailbox.Entry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		if e.Event != mailbox.EventDelivered || e.Thread != "restock-gadget-1" {
			continue
		}
		n++
		if !strings.Contains(dom, e.Subject) {
			t.Errorf("the page does not show %s %s → %s: %q", e.Verb, e.From, e.To, e.Subject)
		}
	}
	if n < 10 || strings.Count(dom, `class="message"`) != n {
		t.Errorf("the page shows %d message rows, the thread has %d", strings.Count(dom, `class="message"`), n)
	}
}
