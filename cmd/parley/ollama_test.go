package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/agents/llm"
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
// passed, every call is in the ledger with its tape, answers are used, and
// every thread replays from the tapes with no model running. Narrate mode
// ends in the rules' deal exactly, and against a real server it does so
// again with every call slowed by a delaying proxy. Against the real tiny
// model, the checks on its text must each have refused some answers: a
// model path that never answers, or whose answers are never checked,
// fails (TestOllamaDealFailsOnABrokenModel).
func TestOllamaDeal(t *testing.T) {
	host, model := os.Getenv("PARLEY_OLLAMA_HOST"), os.Getenv("PARLEY_OLLAMA_MODEL")
	real := host != "" && model != ""
	if !real {
		srv := fakeollama.Start(followingModel, "fake:latest")
		defer srv.Close()
		host, model = srv.URL, "fake"
	}
	bin := parleyBin(t)
	rules := playOllamaDeal(t, bin, ollamaOpts{mode: "rules"})
	if rules.deal == "" || strings.HasPrefix(rules.deal, "none") {
		t.Fatalf("the rules' deal: %q", rules.deal)
	}
	refused := map[string]int{}
	for _, mode := range []string{"narrate", "decide"} {
		t.Run(mode, func(t *testing.T) {
			run := playOllamaDeal(t, bin, ollamaOpts{host: host, model: model, mode: mode, real: real})
			for _, p := range run.problems(real) {
				t.Error(p)
			}
			if mode == "narrate" && run.deal != rules.deal {
				t.Errorf("narrate mode's deal %q, want the rules' %q", run.deal, rules.deal)
			}
			for check, n := range run.refused {
				refused[check] += n
			}
		})
	}
	if real {
		// The tiny random model writes nonsense at temperature 0.8: the
		// checks on a text must have caught it, and the decisions it made
		// within their bounds were used (decide mode, above).
		for _, check := range []string{"numbers", "language"} {
			if refused[check] == 0 {
				t.Errorf("no answer refused by the %s check: %v", check, refused)
			}
		}
		t.Run("slow", func(t *testing.T) {
			// Every call 2 to 4 s slower, seeded: the calls of procurement
			// and of the vendor the rules' deal goes to queue on one server,
			// and the vendor's quote is due when the 30 s quote window closes.
			proxy := slowProxy(t, host, 2*time.Second, 4*time.Second)
			run := playOllamaDeal(t, bin, ollamaOpts{host: proxy, model: model, mode: "narrate", real: true,
				only: []string{"procurement", rules.winner}})
			for _, p := range run.problems(true) {
				t.Error(p)
			}
			if run.deal != rules.deal {
				t.Errorf("narrate mode on a slow server: deal %q, want the rules' %q", run.deal, rules.deal)
			}
		})
	}
}

// TestOllamaDealFailsOnABrokenModel: the checks of the end-to-end test
// fail against a server that answers every chat with an error — the deal
// ends, on the rules, but no answer of the model was used.
func TestOllamaDealFailsOnABrokenModel(t *testing.T) {
	srv := fakeollama.Start(func(api.ChatRequest) fakeollama.Reply {
		return fakeollama.Reply{Status: 500, Error: "the runner crashed"}
	}, "broken:latest")
	defer srv.Close()
	run := playOllamaDeal(t, parleyBin(t), ollamaOpts{host: srv.URL, model: "broken", mode: "narrate"})
	problems := strings.Join(run.problems(true), "\n")
	if !strings.Contains(problems, "no answer of the model came back") {
		t.Errorf("against a broken server the checks found: %q, want that no answer was used", problems)
	}
}

// ollamaOpts say how a deal is played: on which server and model, in which
// mode ("rules" for none), and whether the server is a real one (slower:
// a deal takes minutes).
type ollamaOpts struct {
	host, model, mode string
	real              bool
	only              []string // the agents on the model; all but the human when none
}

// ollamaRun is a deal played, as the ledger tells it.
type ollamaRun struct {
	mode      string
	entries   []mailbox.Entry
	deal      string         // "vendor-b: 500 widget, 2400.00 USD", or "none: " and the human's notice
	winner    string         // the vendor ordered from
	calls     int            // model calls made
	used      map[string]int // answers used, by purpose
	refused   map[string]int // answers refused, by the check that refused them
	fallbacks int
	tokens    int64         // spent, as the model's tokenizer counts them
	chars     int           // of the prompts and answers, for what another tokenizer would count
	took      time.Duration // in model calls, their waits for a turn included
	seconds   time.Duration // from the stock falling to the deal's end
	found     []string      // found while playing: missing tapes, replays that differ
}

// playOllamaDeal initialises a root, puts every agent but the human (and
// inventory, whose requests code writes) on the model, lowers the stock,
// runs each agent as its own process until the deal ends and every message
// is finished, and reads what happened.
func playOllamaDeal(t *testing.T, bin string, o ollamaOpts) ollamaRun {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command(bin, "--root", root, "init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if o.mode != "rules" {
		team := filepath.Join(root, agents.TeamFile)
		data, _ := os.ReadFile(team)
		temperature := "0"
		if o.real {
			// At 0 the tiny random model repeats one token until it is cut
			// off; at 0.8 its answers end, and are used or refused.
			temperature = "0.8"
		}
		brain := `brain = "ollama"` + "\nmodel = \"" + o.model + "\"\nhost = \"" + o.host + "\"\nllm = \"" + o.mode +
			"\"\ntimeout = \"120s\"\nseed = 7\ntemperature = " + temperature + "\nmax_tokens = 640\nnum_ctx = 8192"
		if len(o.only) == 0 {
			data = bytes.ReplaceAll(data, []byte(`brain = "rules"`), []byte(brain))
		}
		for _, n := range o.only {
			data = regexp.MustCompile(`(name = "`+n+`"\nrole = "[a-z]+"\n)brain = "rules"`).ReplaceAll(data, []byte("${1}"+brain))
		}
		os.WriteFile(team, data, 0o644)
		if out, err := exec.Command(bin, "--root", root, "doctor").CombinedOutput(); err != nil {
			t.Fatalf("doctor: %v\n%s", err, out)
		}
	}
	names := []string{"inventory", "procurement", "vendor-a", "vendor-b", "vendor-c", "finance"}
	procs := map[string]*exec.Cmd{}
	logs := &lineLog{}
	for _, n := range names {
		procs[n] = startAgent(t, bin, root, n, logs)
	}
	defer stopAgents(procs)
	stock := filepath.Join(root, "inventory", "stock.toml")
	data, _ := os.ReadFile(stock)
	os.WriteFile(stock+".tmp", bytes.Replace(data, []byte("stock = 400"), []byte("stock = 40"), 1), 0o644)
	os.Rename(stock+".tmp", stock)

	// The deal ends when finance has paid, when the human is told it could
	// not be made (a random model may walk away), or when it waits for the
	// human (a random model may agree to a total above the sign-off
	// threshold); then every message is finished before the agents stop, so
	// that no model call is cut by the stop. A real model on a CPU answers in
	// a second or so, and the agents' calls queue on one server: a deal
	// takes minutes.
	wait := time.Minute
	if o.real {
		wait = 12 * time.Minute
	}
	awaitLedger(t, root, wait, func(es []mailbox.Entry) bool {
		return (count(es, "decision", "PAID", "allow") > 0 || countDelivered(es, "human", "NOTIFY") > 0 || countDelivered(es, "human", "ESCALATE") > 0) && settled(es)
	}, logs)
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
	run := ollamaRun{mode: o.mode, entries: entries, used: map[string]int{}, refused: map[string]int{}, deal: "none"}
	threads := map[string]bool{}
	handled := map[string]bool{} // agent and thread, of every message an agent claimed
	for _, e := range entries {
		if e.Thread != "" {
			threads[e.Thread] = true
		}
		if e.Event == mailbox.EventClaimed {
			handled[e.Agent+" "+e.Thread] = true
		}
		switch {
		case e.Event == "decision" && e.Verb == "ORDER" && e.Decision == "allow":
			run.deal = fmt.Sprintf("%s: %d %s, %s %s", e.To, e.Quantity, e.Item, e.Amount, e.Currency)
			run.winner = e.To
		case e.Event == mailbox.EventDelivered && e.To == "human" && e.Verb == "NOTIFY" && run.deal == "none":
			run.deal = "none: " + e.Subject
		case e.Event != agents.EventLLM:
		case e.Decision == agents.Answered:
			run.used[strings.TrimPrefix(e.Rule, "llm.")]++
			if _, why, ok := strings.Cut(e.Reason, "some texts refused"); ok {
				for _, c := range checksOf(why) {
					run.refused[c]++
				}
			}
		case e.Decision == agents.Refused:
			for _, c := range checksOf(e.Reason) {
				run.refused[c]++
			}
			if checksOf(e.Reason)[0] == "other" {
				t.Logf("refused, for a reason no check names: %s", e.Reason)
			}
		case e.Decision == agents.FellBack || e.Decision == agents.Escalated:
			run.fallbacks++
		}
		if e.Event == agents.EventLLM && e.File != "" {
			run.calls++
			run.tokens += e.Tokens
			run.took += time.Duration(e.Millis) * time.Millisecond
			var tape llm.Tape
			if data, err := os.ReadFile(filepath.Join(root, e.File)); err == nil && json.Unmarshal(data, &tape) == nil {
				run.chars += len(tape.System) + len(tape.User) + len(tape.Answer)
			}
			if _, err := os.Stat(filepath.Join(root, e.File)); err != nil {
				run.found = append(run.found, fmt.Sprintf("the tape of a call is missing: %v", err))
			}
		}
	}
	if len(entries) > 0 {
		run.seconds = entries[len(entries)-1].Time.Sub(entries[0].Time)
	}
	t.Logf("%s: deal %s in %s; %d model calls (%d tokens, %d characters, %s), used %v, refused %v, %d fallbacks",
		o.mode, run.deal, run.seconds.Round(time.Second), run.calls, run.tokens, run.chars, run.took.Round(time.Millisecond), run.used, run.refused, run.fallbacks)
	if o.mode == "rules" {
		return run
	}
	out, _ := exec.Command(bin, "--root", root, "status", "--json").Output()
	var st struct{ Agents []agentStatus }
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	for _, a := range st.Agents {
		if a.Name == "procurement" && (a.Model == nil || a.Model.Calls == 0) {
			run.found = append(run.found, fmt.Sprintf("status shows procurement's model use as %+v", a.Model))
		}
	}
	// Every thread, whatever its end, replays the same from the tapes.
	for th := range threads {
		for _, n := range []string{"procurement", "finance", "vendor-a", "vendor-b", "vendor-c"} {
			if (len(o.only) > 0 && !slices.Contains(o.only, n)) || !handled[n+" "+th] {
				continue // not on the model, or took no part in the thread (a deal walked away from before finance)
			}
			if out, err := exec.Command(bin, "--root", root, "replay", n, "--thread", th).CombinedOutput(); err != nil {
				run.found = append(run.found, fmt.Sprintf("replay %s --thread %s: %v\n%s", n, th, err, out))
			}
		}
	}
	if !o.real && o.model == "fake" {
		// The model's words went out; the numbers are the ones agreed.
		msgs, _ := filepath.Glob(filepath.Join(root, "vendor-*", "cur", "*"))
		words := 0
		for _, f := range msgs {
			if b, _ := os.ReadFile(f); bytes.Contains(b, []byte("Written by the model.")) {
				words++
			}
		}
		if words == 0 {
			run.found = append(run.found, "no message to a vendor carries the model's text")
		}
	}
	return run
}

// checksOf names the checks that refused an answer, from its reason;
// "other" when none is named.
func checksOf(reason string) []string {
	var out []string
	for _, c := range []struct{ check, says string }{
		{"numbers", "which the message does not carry"},
		{"language", "repeats"}, {"language", "symbols"}, {"language", "mixes scripts"}, {"language", "has no word"},
		{"length", "characters long"}, {"empty", "is empty"},
		{"cut off", "cut off"}, {"not JSON", "not a JSON"},
		{"choice", "is not one of"}, {"choice", "is outside"},
		{"no answer", "the Ollama server"}, {"no answer", "no answer"}, {"no answer", "no turn"},
	} {
		if strings.Contains(reason, c.says) && !slices.Contains(out, c.check) {
			out = append(out, c.check)
		}
	}
	if len(out) == 0 {
		out = append(out, "other")
	}
	return out
}

// problems are what the run breaks of the end-to-end test's promises:
// the policy's limits, one order and one payment at most, tapes and
// replays, and answers of the model used (with the fake, every answer and
// no fallback).
func (run ollamaRun) problems(real bool) []string {
	out := append([]string(nil), run.found...)
	orders, paid := count(run.entries, "decision", "ORDER", "allow"), count(run.entries, "decision", "PAID", "allow")
	if orders > 1 || paid != orders || (!real && orders != 1) {
		out = append(out, fmt.Sprintf("%d orders, %d payments allowed", orders, paid))
	}
	limit, floor := decimal.RequireFromString("5000"), decimal.RequireFromString("4.50")
	for _, e := range run.entries {
		if e.Event == "decision" && e.Decision == "allow" && e.Amount != "" && decimal.RequireFromString(e.Amount).GreaterThan(limit) {
			out = append(out, fmt.Sprintf("%s of %s %s allowed, above the limit", e.Verb, e.Amount, e.Currency))
		}
		if e.Event == "decision" && e.Verb == "ORDER" && e.Decision == "allow" && e.Quantity > 0 {
			if unit := decimal.RequireFromString(e.Amount).Div(decimal.NewFromInt(e.Quantity)); unit.LessThan(floor) {
				out = append(out, fmt.Sprintf("ordered at %s a unit, below every vendor's floor", unit))
			}
		}
	}
	// An answer that came back was used, or refused by a check on what it
	// says: a model path that answers nothing (a server that errs on every
	// chat) has neither.
	came := 0
	for _, n := range run.used {
		came += n
	}
	for check, n := range run.refused {
		if check != "no answer" && check != "other" {
			came += n
		}
	}
	switch {
	case run.calls == 0:
		out = append(out, "no model call is in the ledger")
	case came == 0:
		out = append(out, fmt.Sprintf("no answer of the model came back to be used or checked in %s mode (%d calls, %d fallbacks)", run.mode, run.calls, run.fallbacks))
	case run.mode == "decide" && run.used["decide"] == 0:
		out = append(out, "no decision of the model was used in decide mode")
	}
	if !real && run.fallbacks > 0 {
		out = append(out, fmt.Sprintf("%d fallbacks with a model that follows every schema", run.fallbacks))
	}
	return out
}

// slowProxy stands in front of the Ollama server at host and holds every
// chat call for a while first, between least and most, drawn from a fixed
// seed: a slow server, as a laptop's is.
func slowProxy(t *testing.T, host string, least, most time.Duration) string {
	t.Helper()
	u, err := llm.ParseHost(host)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(19, 3))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/chat" {
			mu.Lock()
			d := least + time.Duration(rnd.Int64N(int64(most-least)+1))
			mu.Unlock()
			select {
			case <-time.After(d): // the server's slowness, not a wait for anything
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
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
