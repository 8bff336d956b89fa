package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/internal/fakeollama"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
	"github.com/shopspring/decimal"
)

// followingModel is a fake model that plays the deal straight: it
// answers every schema, counters once, then accepts; vendors quote the
// middle of their range, finance approves.
func followingModel(req api.ChatRequest) fakeollama.Reply {
	user := fakeollama.User(req)
	return fakeollama.Follow(req, func(field string, enum []string) string {
		switch field {
		case "action":
			for _, a := range []string{"APPROVED", "QUOTE"} {
				if strings.Contains(strings.Join(enum, " "), a) {
					return a
				}
			}
			if strings.Contains(user, "This is round 1 of") && strings.Contains(strings.Join(enum, " "), "COUNTER") {
				return "COUNTER"
			}
			if strings.Contains(strings.Join(enum, " "), "ACCEPT") {
				return "ACCEPT"
			}
		case "unit_price":
			return enum[len(enum)/2]
		case "text", "texts":
			return "Written by the model."
		}
		return ""
	})
}

// TestOllamaDeal plays the restock deal with every agent but the human on
// an Ollama brain, each its own process, in both modes: against a fake
// server that plays straight, and — when PARLEY_OLLAMA_HOST and
// PARLEY_OLLAMA_MODEL name one (make e2e-ollama) — against a real server,
// whose model may answer anything. Either way the deal ends, no limit is
// passed, every call is in the ledger with its tape, and the deal replays
// from the tapes with no model running.
func TestOllamaDeal(t *testing.T) {
	host, model := os.Getenv("PARLEY_OLLAMA_HOST"), os.Getenv("PARLEY_OLLAMA_MODEL")
	real := host != "" && model != ""
	if !real {
		srv := fakeollama.Start(followingModel, "fake:latest")
		defer srv.Close()
		host, model = srv.URL, "fake"
	}
	bin := parleyBin(t)
	for _, mode := range []string{"narrate", "decide"} {
		t.Run(mode, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			if out, err := exec.Command(bin, "--root", root, "init").CombinedOutput(); err != nil {
				t.Fatalf("init: %v\n%s", err, out)
			}
			team := filepath.Join(root, agents.TeamFile)
			data, _ := os.ReadFile(team)
			brain := `brain = "ollama"` + "\nmodel = \"" + model + "\"\nhost = \"" + host + "\"\nllm = \"" + mode + "\"\ntimeout = \"120s\"\nseed = 7\nmax_tokens = 1024\nnum_ctx = 8192"
			os.WriteFile(team, bytes.ReplaceAll(data, []byte(`brain = "rules"`), []byte(brain)), 0o644)
			if out, err := exec.Command(bin, "--root", root, "doctor").CombinedOutput(); err != nil {
				t.Fatalf("doctor: %v\n%s", err, out)
			}

			names := []string{"inventory", "procurement", "vendor-a", "vendor-b", "vendor-c", "finance"}
			procs := map[string]*exec.Cmd{}
			logs := &lineLog{}
			for _, n := range names {
				procs[n] = startAgent(t, bin, root, n, logs)
			}
			defer stopAgents(procs)
			stock := filepath.Join(root, "inventory", "stock.toml")
			data, _ = os.ReadFile(stock)
			os.WriteFile(stock+".tmp", bytes.Replace(data, []byte("stock = 400"), []byte("stock = 40"), 1), 0o644)
			os.Rename(stock+".tmp", stock)

			// The deal ends when finance has paid, when the human is told it
			// could not be made (a random model may walk away), or when it
			// waits for the human (a random model may agree to a total above
			// the sign-off threshold).
			// A real model on a CPU answers in a second or so, and the
			// agents' calls queue on one server: a deal takes minutes.
			wait := time.Minute
			if real {
				wait = 8 * time.Minute
			}
			awaitLedger(t, root, wait, func(es []mailbox.Entry) bool {
				return count(es, "decision", "PAID", "allow") > 0 || countDelivered(es, "human", "NOTIFY") > 0 || countDelivered(es, "human", "ESCALATE") > 0
			}, logs)
			if !real {
				// Stopped once every message is finished: a model call cut
				// by the stop falls back, and none may here.
				awaitLedger(t, root, wait, settled, logs)
			}
			stopAgents(procs)
			r, err := mailbox.OpenRoot(root, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			entries, err := readLedger(r) // all of it, now that every agent has stopped
			if err != nil {
				t.Fatal(err)
			}

			orders := count(entries, "decision", "ORDER", "allow")
			if orders > 1 || (!real && orders != 1) || count(entries, "decision", "PAID", "allow") != orders {
				t.Errorf("%d orders, %d payments allowed", orders, count(entries, "decision", "PAID", "allow"))
			}
			limit := decimal.RequireFromString("5000")
			floor := decimal.RequireFromString("4.50")
			var thread string
			calls, fallbacks := 0, 0
			refusals := map[string]int{} // why answers were refused, for the log
			for _, e := range entries {
				if e.Event == "decision" && e.Decision == "allow" && e.Amount != "" {
					if a := decimal.RequireFromString(e.Amount); a.GreaterThan(limit) {
						t.Errorf("%s of %s %s allowed, above the limit", e.Verb, e.Amount, e.Currency)
					}
				}
				if e.Event == "decision" && e.Verb == "ORDER" && e.Decision == "allow" {
					thread = e.Thread
					if unit := decimal.RequireFromString(e.Amount).Div(decimal.NewFromInt(e.Quantity)); unit.LessThan(floor) {
						t.Errorf("ordered at %s a unit, below every vendor's floor", unit)
					}
				}
				if e.Event == agents.EventLLM {
					if e.File != "" {
						calls++
						if _, err := os.Stat(filepath.Join(root, e.File)); err != nil {
							t.Errorf("the tape of a call is missing: %v", err)
						}
					}
					if e.Decision == agents.FellBack || e.Decision == agents.Escalated {
						fallbacks++
					}
					if e.Decision == agents.Refused {
						_, why, _ := strings.Cut(e.Reason, ": attempt ")
						refusals[e.Rule+": "+why[min(len(why), 3):min(len(why), 90)]]++
					}
				}
			}
			t.Logf("%s: %d model calls, %d fallbacks, %d orders", mode, calls, fallbacks, orders)
			for why, n := range refusals {
				t.Logf("  refused %d×: %s", n, why)
			}
			if calls == 0 {
				t.Fatal("no model call is in the ledger")
			}
			if !real && fallbacks > 0 {
				t.Errorf("%d fallbacks with a model that follows every schema:\n%s", fallbacks, logs.String())
			}

			out, _ := exec.Command(bin, "--root", root, "status", "--json").Output()
			var st struct{ Agents []agentStatus }
			if err := json.Unmarshal(out, &st); err != nil {
				t.Fatalf("status --json: %v\n%s", err, out)
			}
			for _, a := range st.Agents {
				// A real server that stops mid-answer reports no tokens.
				if a.Name == "procurement" && (a.Model == nil || a.Model.Calls == 0 || (!real && a.Model.Tokens == 0)) {
					t.Errorf("status shows procurement's model use as %+v", a.Model)
				}
			}
			if thread == "" {
				return // no deal to replay
			}
			for _, n := range []string{"procurement", "finance"} {
				if out, err := exec.Command(bin, "--root", root, "replay", n, "--thread", thread).CombinedOutput(); err != nil {
					t.Errorf("replay %s: %v\n%s", n, err, out)
				}
			}
			if !real {
				// The model's words went out; the numbers are the ones agreed.
				msgs, _ := filepath.Glob(filepath.Join(root, "vendor-*", "cur", "*"))
				words := 0
				for _, f := range msgs {
					if b, _ := os.ReadFile(f); bytes.Contains(b, []byte("Written by the model.")) {
						words++
					}
				}
				if words == 0 {
					t.Error("no message to a vendor carries the model's text")
				}
			}
		})
	}
}

// TestDoctorEscalateFallback: with the policy parley init writes, every
// role of the default team may put a step to the human, so fallback =
// "escalate" works for a vendor; doctor warns when the policy does not let
// it through.
func TestDoctorEscalateFallback(t *testing.T) {
	srv := fakeollama.Start(followingModel, "llama3.2:latest")
	defer srv.Close()
	bin := parleyBin(t)
	for _, tt := range []struct {
		name, policy string
		warn         bool
	}{
		{"default policy", "", false},
		{"no rule", "vendors may not escalate", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			if out, err := exec.Command(bin, "--root", root, "init").CombinedOutput(); err != nil {
				t.Fatalf("init: %v\n%s", err, out)
			}
			team := filepath.Join(root, agents.TeamFile)
			data, _ := os.ReadFile(team)
			one := []byte("name = \"vendor-b\"\nrole = \"vendor\"\nbrain = \"rules\"")
			with := []byte("name = \"vendor-b\"\nrole = \"vendor\"\nbrain = \"ollama\"\nmodel = \"llama3.2\"\nfallback = \"escalate\"\nhost = \"" + srv.URL + "\"")
			if !bytes.Contains(data, one) {
				t.Fatalf("the default team has no %q", one)
			}
			os.WriteFile(team, bytes.Replace(data, one, with, 1), 0o644)
			if tt.policy != "" {
				pol := filepath.Join(root, policy.File)
				data, _ := os.ReadFile(pol)
				os.WriteFile(pol, bytes.Replace(data, []byte("verbs = [\"ESCALATE\"]\nto = [\"human\"]"), []byte("verbs = [\"ESCALATE\"]\nto = [\"nobody\"]"), 1), 0o644)
			}
			out, err := exec.Command(bin, "--root", root, "doctor", "--timeout", "2s").CombinedOutput()
			if err != nil {
				t.Fatalf("doctor: %v\n%s", err, out)
			}
			warned := strings.Contains(string(out), "warn  vendor-b: fallback = \"escalate\" cannot work: no [[allow]] rule of policy.toml lets vendor-b send ESCALATE to human")
			if warned != tt.warn {
				t.Errorf("doctor said:\n%s\nwant a warning: %v", out, tt.warn)
			}
		})
	}
	pol, err := policy.Parse("policy.toml", policy.Default)
	if err != nil {
		t.Fatal(err)
	}
	def, err := agents.ParseTeam("parley.toml", agents.DefaultTeam)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range def.Agents {
		if a.Role != "human" && pol.Allows(a.Name, mailbox.Escalate, def.Human) == 0 {
			t.Errorf("the default policy does not let %s send ESCALATE to %s", a.Name, def.Human)
		}
	}
}

// TestDoctor: parley doctor says, for each agent with a model, whether its
// host answers and has the model, and what to run when not.
func TestDoctor(t *testing.T) {
	srv := fakeollama.Start(followingModel, "llama3.2:latest")
	defer srv.Close()
	bin := parleyBin(t)
	down := "127.0.0.1:1" // nothing listens on port 1
	tests := []struct {
		name, host, model string
		code              int
		want              string
	}{
		{"all well", srv.URL, "llama3.2", 0, "ok    procurement: model llama3.2 on " + srv.URL},
		{"not pulled", srv.URL, "qwen2.5:7b", 1, "parley: hint: run: ollama pull qwen2.5:7b"},
		{"no server", down, "llama3.2", 1, "parley: hint: start it with: ollama serve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			if out, err := exec.Command(bin, "--root", root, "init").CombinedOutput(); err != nil {
				t.Fatalf("init: %v\n%s", err, out)
			}
			team := filepath.Join(root, agents.TeamFile)
			data, _ := os.ReadFile(team)
			one := []byte("name = \"procurement\"\nrole = \"procurement\"\nbrain = \"rules\"")
			with := []byte("name = \"procurement\"\nrole = \"procurement\"\nbrain = \"ollama\"\nmodel = \"" + tt.model + "\"\nhost = \"" + tt.host + "\"")
			os.WriteFile(team, bytes.Replace(data, one, with, 1), 0o644)
			out, err := exec.Command(bin, "--root", root, "doctor", "--timeout", "2s").CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tt.code || !strings.Contains(string(out), tt.want) {
				t.Errorf("doctor exit %d, output:\n%s\nwant exit %d and %q", code, out, tt.code, tt.want)
			}
		})
	}
}
