package policy

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
)

// bkRace is the policy two processes race under: a budget and a daily
// limit for finance that the deals of both cannot all fit in.
var bkRace = bkRules{name: "race", perTx: 500000, approvalOver: 250000, budget: 1500000, perDay: 900000, perMonth: 3000000,
	period: "month", reserve: 24 * time.Hour, timeout: 4 * time.Hour, onTimeout: "deny"}

// bkScripted is one step of a process's script: an action to send, or a
// release.
type bkScripted struct {
	stream         int // which process
	at             time.Time
	agent          string
	m              *mailbox.Message
	thread, vendor string // a release
}

// bkScript writes the deals of a race: each thread's steps in order, the
// threads interleaved in time, threads alternating between the two
// processes. The steps do not depend on outcomes (the processes run
// unattended): an approval above the threshold is sent, the human
// approves, it is sent again; a payment against changed terms is sent,
// the human approves its exact amount, it is sent again.
func bkScript(seed uint64, r bkRules) []bkScripted {
	rng := rand.New(rand.NewPCG(seed, 16))
	ids := 0
	msg := func(from, to string, verb mailbox.Verb, thread string) *mailbox.Message {
		ids++
		return &mailbox.Message{Version: "1", ID: fmt.Sprintf("<race%d-%d@prop>", seed, ids), From: from, To: to, Thread: thread, Verb: verb, Subject: string(verb)}
	}
	var threads [][]bkScripted
	for d := range 6 {
		thread, item := fmt.Sprintf("race-%d", d), bkItems[rng.IntN(len(bkItems))]
		var steps []bkScripted
		add := func(agent string, m *mailbox.Message) {
			steps = append(steps, bkScripted{stream: d % 2, agent: agent, m: m})
		}
		type part struct {
			vendor  string
			qty     int64
			amount  bkCents
			approve *mailbox.Message
			fell    bool
		}
		var parts []*part
		var total bkCents
		for k, v := range rng.Perm(len(bkVendors))[:1+rng.IntN(3)] {
			p := &part{vendor: bkVendors[v], qty: int64(10 * (1 + rng.IntN(40))), amount: bkCents(30000 + rng.IntN(250000))}
			if k == 0 && rng.IntN(3) == 0 {
				p.amount += 200000 // above the threshold on its own
			}
			p.approve = msg("finance", "procurement", mailbox.Approved, thread)
			p.approve.Item, p.approve.Quantity, p.approve.Amount = item, p.qty, p.amount.money()
			p.approve.Extra = []mailbox.Header{{Name: "Vendor", Value: p.vendor}}
			parts = append(parts, p)
			total += p.amount
			add("finance", p.approve)
		}
		if total > r.approvalOver {
			h := msg(bkHuman, "finance", mailbox.Approved, thread)
			h.Item, h.Amount = item, total.money() // the thread's total: its parts' approvals and orders
			add(bkHuman, h)
			for _, p := range parts {
				if p.amount > r.approvalOver {
					add("finance", p.approve)
				}
			}
		}
		for _, p := range parts {
			if rng.IntN(6) == 0 {
				p.fell = true
				steps = append(steps, bkScripted{stream: d % 2, thread: thread, vendor: p.vendor})
				continue
			}
			o := msg("procurement", p.vendor, mailbox.Order, thread)
			o.Item, o.Quantity, o.Amount = item, p.qty, p.amount.money()
			add("procurement", o)
		}
		for _, p := range parts {
			if p.fell {
				continue
			}
			c := msg(p.vendor, "procurement", mailbox.Confirmed, thread)
			c.Item, c.Quantity, c.Amount = item, p.qty, p.amount.money()
			if rng.IntN(4) == 0 {
				c.Amount = (p.amount + bkCents(1+rng.IntN(30000))).money()
			}
			add(p.vendor, c)
			payer := "finance"
			if rng.IntN(5) == 0 {
				payer = "procurement"
			}
			pay := msg(payer, p.vendor, mailbox.Paid, thread)
			pay.Item, pay.Quantity, pay.Amount = item, p.qty, c.Amount
			add(payer, pay)
			if !c.Amount.Amount.Equal(p.amount.money().Amount) {
				h := msg(bkHuman, payer, mailbox.Approved, thread)
				h.Item, h.Amount = item, c.Amount
				add(bkHuman, h)
				add(payer, pay)
			}
		}
		threads = append(threads, steps)
	}
	var out []bkScripted
	// Within one budget period: the two processes play their parts of the
	// script at once, each at its own point of it, so one may be a day or
	// two ahead of the other — clocks that far apart across a month's end
	// would judge one budget by two months. (The one-process property test
	// crosses month ends.)
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	for left := true; left; {
		left = false
		d := rng.IntN(len(threads))
		for i := range threads {
			if k := (d + i) % len(threads); len(threads[k]) > 0 {
				s := threads[k][0]
				threads[k] = threads[k][1:]
				at = at.Add(time.Duration(1+rng.IntN(6)) * time.Minute)
				if rng.IntN(60) == 0 {
					at = at.Add(r.reserve) // a long pause: approvals lapse
				}
				s.at = at
				out = append(out, s)
				left = true
				break
			}
		}
	}
	return out
}

// TestBooksEngineHelper is one of the racing processes when the test
// binary runs itself with PARLEY_BOOKS_HELPER=ROOT,SEED,STREAM: it plays its
// part of the script through an Engine of its own, once the test lets both
// processes go.
func TestBooksEngineHelper(t *testing.T) {
	arg := os.Getenv("PARLEY_BOOKS_HELPER")
	if arg == "" {
		return // the os/exec tests' helper pattern: only a helper runs it
	}
	if err := bkHelper(arg); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func bkHelper(arg string) error {
	f := strings.Split(arg, ",")
	seed, _ := strconv.ParseUint(f[1], 10, 64)
	stream, _ := strconv.Atoi(f[2])
	var clock time.Time
	r, err := mailbox.OpenRoot(f[0], func() time.Time { return clock })
	if err != nil {
		return err
	}
	defer r.Close()
	e := NewEngine(r)
	defer e.Close()
	if _, _, err := e.State(); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // wait for the go
	for _, s := range bkScript(seed, bkRace) {
		if s.stream != stream {
			continue
		}
		clock = s.at
		if s.m == nil {
			if err := e.Release("finance", s.thread, s.vendor, "the deal fell through"); err != nil {
				return err
			}
			continue
		}
		s.m.Date = s.at
		if _, err := e.Send(Action{Agent: s.agent, Message: s.m}); err != nil && !errors.Is(err, ErrDenied) && !errors.Is(err, ErrEscalated) {
			return err
		}
	}
	return nil
}

// TestBooksPropertyEngines races two processes, each with its own Engine,
// deciding the deals of one root at once: they compete for one budget and
// for finance's daily limit. Every decision in the ledger must be the
// model's, played in the ledger's order (each was taken under the ledger's
// lock, on all that came before it); the books of a fresh engine must be
// the model's; no limit may be passed.
func TestBooksPropertyEngines(t *testing.T) {
	seeds := 4
	if testing.Short() {
		seeds = 2
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, File), []byte(bkRace.toml()), 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := mailbox.OpenRoot(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for _, a := range append([]string{"finance", "procurement", bkHuman}, bkVendors...) {
				if err := r.Inbox(a).Create(); err != nil {
					t.Fatal(err)
				}
			}
			var cmds []*exec.Cmd
			var gos []io.WriteCloser
			for stream := range 2 {
				cmd := exec.Command(exe, "-test.run=^TestBooksEngineHelper$", "-test.count=1")
				cmd.Env = append(os.Environ(), fmt.Sprintf("PARLEY_BOOKS_HELPER=%s,%d,%d", dir, seed, stream))
				cmd.Stderr = os.Stderr
				g, err := cmd.StdinPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				cmds, gos = append(cmds, cmd), append(gos, g)
			}
			for _, g := range gos {
				g.Close() // go, both at once
			}
			for i, cmd := range cmds {
				if err := cmd.Wait(); err != nil {
					t.Fatalf("process %d: %v", i, err)
				}
			}
			bkCheckRace(t, seed, entries(t, r), r)
		})
	}
}

// bkCheckRace plays the ledger of a race through the model.
func bkCheckRace(t *testing.T, seed uint64, es []mailbox.Entry, r *mailbox.Root) {
	t.Helper()
	script := map[string]bkScripted{}
	for _, s := range bkScript(seed, bkRace) {
		if s.m != nil {
			script[s.m.ID] = s
		}
	}
	m := newBkModel(bkRace)
	decisions, switches, last := 0, 0, -1
	var latest time.Time
	outcomes := map[string]int{}
	fail := func(at int, format string, args ...any) {
		var b strings.Builder
		for _, e := range es[:at+1] {
			b.WriteString("\n  " + bkLine(e))
		}
		t.Fatalf("seed %d: %s\nledger:%s", seed, fmt.Sprintf(format, args...), b.String())
	}
	for i, e := range es {
		if e.Event == EventDecision {
			s, ok := script[e.MsgID]
			if !ok {
				fail(i, "a decision about %s, which no process sent", e.MsgID)
			}
			msg := *s.m
			msg.Date = e.Time
			o, rule := m.decide(s.agent, &msg, e.Time)
			if string(o) != e.Decision || rule != e.Rule {
				fail(i, "line %d: %s decided %s by %s (%s); the model says %s by %s", e.Seq, e.Verb, e.Decision, e.Rule, e.Reason, o, rule)
			}
			decisions++
			outcomes[e.Verb+" "+e.Decision+" "+e.Rule]++
			if last >= 0 && s.stream != last {
				switches++
			}
			last = s.stream
			for _, l := range m.allowedLimits(e) {
				fail(i, "line %d: %s", e.Seq, l)
			}
		}
		m.apply(e)
		// The limits hold at the latest moment either process reached: a
		// process a day behind in its part of the script (a long pause in
		// the other's) still sees as held what has lapsed by then.
		if e.Time.After(latest) {
			latest = e.Time
		}
		for _, l := range m.limits(latest) {
			fail(i, "line %d: %s", e.Seq, l)
		}
	}
	if switches < 2 {
		t.Errorf("the two processes took turns %d times in %d decisions: no race", switches, decisions)
	}
	t.Logf("%d decisions, the processes taking turns %d times; %v", decisions, switches, outcomes)

	fresh := NewEngine(r)
	defer fresh.Close()
	s, p, err := fresh.State()
	if err != nil || p == nil {
		t.Fatalf("a fresh engine: %v", err)
	}
	end := es[len(es)-1].Time
	for _, at := range []time.Time{end, end.Add(bkRace.reserve + time.Hour)} {
		if diffs := bkDiff(bkSystemSnap(s, p, at), m.snap(at)); len(diffs) > 0 {
			t.Errorf("seed %d: the books of a fresh engine at %s differ from the model's:\n\t%s", seed, at.Format(time.RFC3339), strings.Join(diffs, "\n\t"))
		}
	}
	w := Replay(es, p)
	if len(w.Changes) > 0 {
		c := w.Changes[0]
		t.Errorf("seed %d: Replay under the same policy changed %d decisions; line %d: was %s by %s, would be %s by %s",
			seed, len(w.Changes), c.Seq, c.Was.Outcome, c.Was.Rule, c.Would.Outcome, c.Would.Rule)
	} else if was, want := bkFigsOf(w.WasBooks), m.snap(end).totals; was != want || bkFigsOf(w.WouldBooks) != want {
		t.Errorf("seed %d: Replay's books %v and %v, model %v", seed, was, bkFigsOf(w.WouldBooks), want)
	}
}
