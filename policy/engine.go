package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parley-dev/parley/internal/cmdline"
	"github.com/parley-dev/parley/mailbox"
)

// BreakerName is who pauses when errors spike, as PAUSED and status name it.
const BreakerName = "the circuit breaker"

// PausedFile is the file whose presence in a root pauses every agent.
const PausedFile = "PAUSED"

// Engine decides actions for the agents of one root: it reads the policy
// (again whenever the file changes, so agents need no restart), keeps the
// state in step with the ledger, and records every decision there.
type Engine struct {
	root   *mailbox.Root
	path   string
	state  *State
	ledger mailbox.Journal // its own: the state follows its own read position

	pol     *Policy
	loadErr error
	stamp   string // size and mtime of the policy file as loaded

	saved mailbox.Position // the line of the last checkpoint of the state (checkpoint.go)
	whole bool             // reads every line, keeps no checkpoint, retires nothing (NewWholeEngine)
}

// NewEngine returns the engine for a root, reading ROOT/policy.toml.
func NewEngine(root *mailbox.Root) *Engine {
	return &Engine{root: root, path: filepath.Join(root.Dir, File), state: NewState()}
}

// NewWholeEngine is NewEngine whose state is read from the ledger's first
// line, every thread held: for a view of all of history (parley books
// --all), at the cost of reading it.
func NewWholeEngine(root *mailbox.Root) *Engine {
	e := NewEngine(root)
	e.whole = true
	return e
}

// Close checkpoints the state, if it moved on enough since the last
// checkpoint, and closes the engine's ledger.
func (e *Engine) Close() error {
	if e.ledger == nil {
		return nil
	}
	e.checkpoint(checkpointOnClose)
	return e.ledger.Close()
}

// open opens the engine's ledger, at the state's checkpoint when there is
// one that the ledger and the policy still match (checkpoint.go), with the
// state it holds; otherwise at the ledger's start, with an empty state.
func (e *Engine) open() error {
	var sn *snapshot
	if e.root.Transport == nil && !e.whole { // a JetStream team reads its stream (docs/NATS.md)
		if s, err := readState(e.root.Dir); err == nil {
			// The books take lines as the policy's human and reserve_for
			// say: a state built under others is not this policy's.
			if p, perr := e.Policy(); perr == nil && p.Human.Agent == s.Human && p.Budget.ReserveFor.Duration == s.Reserve {
				sn = s
			}
		}
	}
	var from mailbox.Position
	if sn != nil {
		from = sn.At
	}
	l, err := e.root.JournalFrom(from)
	if err != nil {
		return err
	}
	e.ledger, e.state, e.saved = l, NewState(), mailbox.Position{}
	if st, ok := l.(interface{ Started() mailbox.Position }); ok && sn != nil && st.Started() == sn.At {
		e.state, e.saved = sn.state(), sn.At
	}
	return nil
}

// checkpoint writes the state's checkpoint, and the ledger's verified
// position, when at least min lines were applied since the last one. A
// checkpoint is a cache: one that cannot be written is skipped, and the
// next start reads more.
func (e *Engine) checkpoint(min uint64) {
	r, ok := e.ledger.(interface {
		ReadTo() mailbox.Position
		VerifiedAt() mailbox.Position
	})
	if !ok || e.root.Transport != nil || e.whole {
		return
	}
	at := r.ReadTo()
	if at.Seq == 0 || at.Seq < e.saved.Seq+min {
		return
	}
	if e.keep(at) != nil {
		return
	}
	_ = mailbox.KeepPosition(e.root.Dir, r.VerifiedAt())
}

// keep writes the state's checkpoint at at, the ledger's index brought up
// to date first (the decisions by message id are looked up there, not
// kept in the checkpoint), and from then holds only the decisions after
// it.
func (e *Engine) keep(at mailbox.Position) error {
	ix, err := mailbox.OpenIndex(e.root.Dir, nil)
	if err != nil {
		return fmt.Errorf("checkpoint the policy state: %w", err)
	}
	ix.Close()
	// The index covers at: what leaves the state is found there, whether
	// or not the checkpoint is written.
	e.state.retire(e.root.Now())
	e.state.forget(at)
	if err := writeState(e.root.Dir, e.state, at); err != nil {
		return err
	}
	e.saved = at
	return nil
}

// restore brings back into the state the threads of ids it retired
// (retire.go), from their lines in the ledger's index up to its
// checkpoint's, before a line on one is applied or an action judged.
func (e *Engine) restore(ids ...string) error {
	from := e.state.from
	if from.Seq == 0 {
		return nil // every line applied here: nothing retired since
	}
	var missing []string
	for _, id := range ids {
		if id != "" && !e.state.held(id) && !slices.Contains(missing, id) {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	ix, err := mailbox.OpenIndexCovering(e.root.Dir, from)
	if err != nil {
		return fmt.Errorf("restore thread %s: %w", missing[0], err)
	}
	defer ix.Close()
	now := e.root.Now()
	for _, id := range missing {
		lines, err := ix.Thread(id)
		if err != nil {
			return fmt.Errorf("restore thread %s: %w", id, err)
		}
		e.state.restore(id, slices.DeleteFunc(lines, func(x mailbox.Entry) bool { return x.Seq > from.Seq }), now)
	}
	return nil
}

// Checkpoint brings the state up to date with the ledger and writes its
// checkpoint, however few lines were applied since the last: parley
// ledger reindex. It returns the line the checkpoint covers.
func (e *Engine) Checkpoint() (mailbox.Position, error) {
	if _, _, err := e.State(); err != nil {
		return mailbox.Position{}, err
	}
	r, ok := e.ledger.(interface {
		ReadTo() mailbox.Position
		VerifiedAt() mailbox.Position
	})
	if !ok || e.root.Transport != nil || e.whole {
		return mailbox.Position{}, errors.New("checkpoint: only a root on files keeps checkpoints, and not a whole engine")
	}
	at := r.ReadTo()
	if at.Seq == 0 {
		return at, nil // an empty ledger: nothing to keep
	}
	if err := e.keep(at); err != nil {
		return at, err
	}
	return at, mailbox.KeepPosition(e.root.Dir, r.VerifiedAt())
}

// Policy returns the policy in force, or why there is none.
func (e *Engine) Policy() (*Policy, error) {
	st, err := os.Stat(e.path)
	if err != nil {
		e.pol, e.loadErr, e.stamp = nil, fmt.Errorf("read policy: %w", err), ""
		return nil, e.loadErr
	}
	stamp := fmt.Sprint(st.Size(), st.ModTime().UnixNano())
	if stamp != e.stamp {
		e.pol, e.loadErr = Load(e.path)
		e.stamp = stamp
	}
	return e.pol, e.loadErr
}

// Paused says why the root is paused, if it is: ROOT/PAUSED is there, or,
// for a team on a transport that spans machines (JetStream), the ledger
// says that a pause, on any of them, has not been lifted.
func (e *Engine) Paused() (string, bool) {
	if e.root.Transport != nil {
		_, _, _ = e.State() // the state up to date; if the ledger cannot be read, nothing can be decided anyway
	}
	return e.paused()
}

// paused is Paused from the state as it stands (in a transaction, fresh).
func (e *Engine) paused() (string, bool) {
	if e.root.Transport != nil {
		return e.state.paused, e.state.paused != ""
	}
	data, err := os.ReadFile(filepath.Join(e.root.Dir, PausedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil { // there, but not readable: paused all the same
		return fmt.Sprintf("%s cannot be read: %v", PausedFile, err), true
	}
	return strings.TrimSpace(string(data)), true
}

// Decide decides an action, records the decision in the ledger and returns
// it. The decision and what it rests on are one locked ledger transaction:
// two processes spending the last of a budget at once cannot both succeed.
// A message decided before (same Message-ID) and allowed gets the same
// answer, and nothing new is recorded: a retried action is not counted
// twice. When denials and errors trip the circuit breaker, the root is
// paused in the same transaction.
func (e *Engine) Decide(a Action) (Decision, error) {
	var d Decision
	now := e.root.Now()
	_, err := e.transact(func(p *Policy, perr error) ([]mailbox.Entry, error) {
		if err := e.restore(a.Message.Thread); err != nil {
			return nil, err
		}
		prev, ok, err := e.decided(a)
		if err != nil {
			return nil, err
		}
		if ok && prev.Outcome == Allow {
			d = prev
			return nil, nil
		}
		out, err := e.trip(p, a.Agent, now, nil)
		if err != nil { // errors recorded since the last decision
			return nil, err
		}
		d = e.judge(p, perr, a, now)
		entry := mailbox.MessageEntry(a.Agent, EventDecision, a.Message)
		entry.Time, entry.Decision, entry.Rule, entry.Reason, entry.Policy, entry.Key = now, string(d.Outcome), d.Rule, d.Reason, d.Policy, a.Message.ID
		out = append(out, entry) // after a pause tripped by earlier errors, before one this decision trips
		tripped := len(out) > 1
		if !tripped && (d.Outcome == Deny || (d.Outcome == Escalate && isFuse(d.Rule))) {
			more, err := e.trip(p, a.Agent, now, &trouble{at: now, agent: a.Agent, what: troubleOf(d.Outcome, string(a.Message.Verb), d.Rule)})
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		}
		return out, nil
	})
	return d, err
}

// decided is the decision already recorded about this very action (the
// same Message-ID, sender, recipient, verb, thread and amount): from the
// state, or, for a message decided at or before the line of the checkpoint
// the state started from, from the ledger's index, its last decision
// line about the message there.
func (e *Engine) decided(a Action) (Decision, bool, error) {
	d, known, same := e.state.decidedHere(a)
	from := e.state.from
	if known || from.Seq == 0 || a.Message.ID == "" {
		return d, known && same, nil
	}
	ix, err := mailbox.OpenIndexCovering(e.root.Dir, from)
	if err != nil {
		return Decision{}, false, fmt.Errorf("was %s decided before: %w", a.Message.ID, err)
	}
	defer ix.Close()
	lines, err := ix.Message(a.Message.ID)
	if err != nil {
		return Decision{}, false, fmt.Errorf("was %s decided before: %w", a.Message.ID, err)
	}
	var last *decided
	for _, x := range lines {
		if x.Event == EventDecision && x.Seq <= from.Seq {
			y := decidedBy(x)
			last = &y
		}
	}
	if last == nil {
		return Decision{}, false, nil
	}
	return last.Decision, last.what == actionPrint(a), nil
}

// trip pauses the root when the errors and denials within the breaker's
// window, with the one being decided (when not nil), reach its count: at
// once, by whichever process sees it, naming the agents whose errors
// counted. It returns the paused entry to record, or none.
func (e *Engine) trip(p *Policy, agent string, now time.Time, deciding *trouble) ([]mailbox.Entry, error) {
	if p == nil || p.Breaker.MaxErrors == 0 {
		return nil, nil
	}
	n, who := e.state.Troubles(p, now, deciding)
	if n < p.Breaker.MaxErrors {
		return nil, nil
	}
	if _, paused := e.paused(); paused {
		return nil, nil
	}
	why := fmt.Sprintf("%d errors or denials within %v (%s)", n, p.Breaker.Window.Duration, who)
	if err := e.writePaused(BreakerName, now, why); err != nil {
		return nil, err
	}
	return []mailbox.Entry{{Time: now, Agent: agent, Event: EventPaused, Rule: "breaker", Reason: why}}, nil
}

// Watch trips the circuit breaker, as agent, if the errors recorded since
// the last decision reach its count: an agent calls it after it sets a file
// aside, and at every tick, so that a burst of bad files pauses the team at
// once, not at the next action of anyone.
func (e *Engine) Watch(agent string) error {
	_, err := e.transact(func(p *Policy, _ error) ([]mailbox.Entry, error) {
		return e.trip(p, agent, e.root.Now(), nil)
	})
	return err
}

// Explain decides an action as Decide would, and records nothing.
func (e *Engine) Explain(a Action) (Decision, error) {
	var d Decision
	_, err := e.transact(func(p *Policy, perr error) ([]mailbox.Entry, error) {
		if err := e.restore(a.Message.Thread); err != nil {
			return nil, err
		}
		d = e.judge(p, perr, a, e.root.Now())
		return nil, nil
	})
	return d, err
}

func (e *Engine) judge(p *Policy, perr error, a Action, now time.Time) Decision {
	if perr != nil {
		// While the policy cannot be read, nothing is allowed (RELIABILITY.md 16).
		return Decision{Outcome: Deny, Rule: "policy", Reason: "the policy cannot be read: " + perr.Error()}
	}
	if why, paused := e.paused(); paused {
		return Decision{Outcome: Deny, Rule: "breaker.paused", Reason: "parley is paused: " + firstLine(why), Policy: p.Hash}
	}
	return e.state.Evaluate(p, a, now)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// transact brings the state up to date and runs fn with the policy in
// force, appending what it returns only if no line came between (under the
// file ledger's lock; on JetStream, fn is run again with the newer lines).
func (e *Engine) transact(fn func(p *Policy, perr error) ([]mailbox.Entry, error)) ([]mailbox.Entry, error) {
	out, err := e.transactOnce(fn)
	if errors.Is(err, mailbox.ErrBroken) {
		// Nothing decided, nothing appended: the team is paused until a
		// person mends the ledger, and what the state was built from is
		// read again, from the start, once it verifies.
		if e.ledger != nil {
			e.ledger.Close()
		}
		e.ledger, e.state = nil, NewState()
		if werr := e.halt(err); werr != nil {
			return nil, errors.Join(err, werr)
		}
	}
	return out, err
}

func (e *Engine) transactOnce(fn func(p *Policy, perr error) ([]mailbox.Entry, error)) ([]mailbox.Entry, error) {
	if e.ledger == nil {
		if err := e.open(); err != nil {
			return nil, err
		}
	}
	if err := e.catchUp(); err != nil {
		return nil, err
	}
	out, err := e.ledger.Transact(func(news []mailbox.Entry) ([]mailbox.Entry, error) {
		p, perr := e.Policy()
		if err := e.apply(p, news); err != nil {
			return nil, err
		}
		return fn(p, perr)
	})
	if err == nil {
		e.checkpoint(checkpointEvery)
	}
	return out, err
}

// apply brings back the retired threads the lines are on, then applies
// them.
func (e *Engine) apply(p *Policy, news []mailbox.Entry) error {
	e.state.Follow(p)
	threads := make([]string, 0, len(news))
	for _, n := range news {
		threads = append(threads, n.Thread)
	}
	if err := e.restore(threads...); err != nil {
		return err
	}
	for _, n := range news {
		e.state.Apply(n)
	}
	return nil
}

// catchUpBytes is how far behind the ledger an engine reads on in batches
// (catchUp) rather than in its next transaction.
var catchUpBytes int64 = 4 << 20

// catchUp reads the ledger on, when the engine is far behind it (no
// checkpoint, or long idle while others wrote), checkpointEvery lines at
// a time, each batch under the lock for as long as it takes and a
// checkpoint between them: memory holds a batch, not history.
func (e *Engine) catchUp() error {
	c, ok := e.ledger.(interface {
		Unread() int64
		Catch(max int, fn func(news []mailbox.Entry) error) (bool, error)
	})
	if !ok || c.Unread() < catchUpBytes {
		return nil
	}
	for {
		all, err := c.Catch(int(checkpointEvery), func(news []mailbox.Entry) error {
			p, _ := e.Policy()
			return e.apply(p, news)
		})
		if err != nil {
			return err
		}
		e.checkpoint(checkpointEvery)
		if all {
			return nil
		}
	}
}

// LedgerCheck is who pauses the team when the ledger does not verify.
const LedgerCheck = "the ledger check"

// halt pauses the root (ROOT/PAUSED, not a ledger line: nothing is
// appended after the break) because the ledger does not verify.
func (e *Engine) halt(broken error) error {
	if _, paused := e.paused(); paused {
		return nil
	}
	return e.writePaused(LedgerCheck, e.root.Now(), "the ledger does not verify: "+broken.Error()+
		"\nparley ledger verify names the line; restore the ledger from git, then parley resume")
}

// Verified is the last ledger line the engine verified: every decision it
// made rests on lines up to it.
func (e *Engine) Verified() mailbox.Head {
	if v, ok := e.ledger.(interface{ Verified() mailbox.Head }); ok {
		return v.Verified()
	}
	return mailbox.Head{}
}

// State brings the state up to date with the ledger and returns it, with
// the policy in force. Threads retired from it (retire.go) are not in it:
// StateOf brings back those asked about.
func (e *Engine) State() (*State, *Policy, error) { return e.StateOf() }

// StateOf is State, with the threads named in it, retired or not.
func (e *Engine) StateOf(threads ...string) (*State, *Policy, error) {
	var p *Policy
	var perr error
	_, err := e.transact(func(pol *Policy, err error) ([]mailbox.Entry, error) {
		p, perr = pol, err
		return nil, e.restore(threads...)
	})
	if err != nil {
		return nil, nil, err
	}
	return e.state, p, perr
}

// Release records that the money an approval holds on thread — the one for
// vendor, or with vendor "" all of them — is no longer needed: the deal
// fell through. It is idempotent.
func (e *Engine) Release(agent, thread, vendor, reason string) error {
	_, err := e.transact(func(*Policy, error) ([]mailbox.Entry, error) {
		if err := e.restore(thread); err != nil {
			return nil, err
		}
		if !e.state.books.holds(thread, vendor) {
			return nil, nil
		}
		return []mailbox.Entry{{Time: e.root.Now(), Agent: agent, Event: EventReleased, Thread: thread, Vendor: vendor, Reason: reason}}, nil
	})
	return err
}

// Pause writes ROOT/PAUSED (who, when, why) and records it: no agent takes
// any action until Resume. Messages keep arriving and wait. On JetStream
// the ledger's line is the pause, seen on every machine.
func (e *Engine) Pause(who, reason string) error {
	now := e.root.Now()
	_, err := e.transact(func(*Policy, error) ([]mailbox.Entry, error) {
		if err := e.writePaused(who, now, reason); err != nil {
			return nil, err
		}
		return []mailbox.Entry{{Time: now, Agent: who, Event: EventPaused, Rule: "manual", Reason: reason}}, nil
	})
	return err
}

func (e *Engine) writePaused(who string, now time.Time, why string) error {
	if e.root.Transport != nil {
		return nil // the ledger's line is the pause, on every machine
	}
	text := cmdline.ForRoot(e.root.Dir, fmt.Sprintf("paused by %s at %s: %s\nparley resume lifts it.\n", who, now.UTC().Format(time.RFC3339), why))
	path := filepath.Join(e.root.Dir, PausedFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	return nil
}

// ErrNotPaused is returned by Resume when there is nothing to resume.
var ErrNotPaused = errors.New("parley is not paused")

// Resume removes ROOT/PAUSED and records it; the breaker counts afresh.
func (e *Engine) Resume(who, reason string) error {
	_, err := e.transact(func(*Policy, error) ([]mailbox.Entry, error) {
		if e.root.Transport != nil {
			if e.state.paused == "" {
				return nil, ErrNotPaused
			}
		} else if err := os.Remove(filepath.Join(e.root.Dir, PausedFile)); errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNotPaused
		} else if err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		return []mailbox.Entry{{Time: e.root.Now(), Agent: who, Event: EventResumed, Reason: reason}}, nil
	})
	return err
}

// EscalationMessage is the ESCALATE to the human that an escalate decision calls
// for: what is asked, why, and how to answer. The policy orders it, so it
// needs no permission of its own.
func EscalationMessage(p *Policy, a Action, d Decision, now time.Time) *mailbox.Message {
	m := a.Message
	ask := fmt.Sprintf("%s wants to send %s %s", a.Agent, m.To, m.Verb)
	amount := m.Total()
	if !amount.IsZero() {
		ask += " for " + amount.String()
	}
	if !d.Covers.IsZero() && !d.Covers.Amount.Equal(amount.Amount) {
		amount = d.Covers // what an approval must cover: the thread's orders with this one
		ask += fmt.Sprintf(", %s in all on the thread", amount)
	}
	if m.Item != "" {
		ask += fmt.Sprintf(" (%d %s)", m.Quantity, m.Item)
	}
	body := fmt.Sprintf(`%s.

Why you are asked: %s (rule %s).

Answer on thread %s with an APPROVED (with the Amount you allow) or a DENIED,
to %s:
  parley approve %s
  parley deny %s --reason "..."
or write the message in an editor: parley compose --to %s --verb APPROVED --reply-to '%s'
`, ask, d.Reason, d.Rule, m.Thread, a.Agent, m.Thread, m.Thread, a.Agent, m.ID)
	if d.Rule == RuleTerms {
		body += fmt.Sprintf("\nOnly an APPROVED of exactly %s lets this payment go. A DENIED pays nothing now:\nwhat was ordered stays owed, and parley books shows it.\n", amount)
	}
	if p.Human.DecisionTimeout.Duration > 0 {
		body += fmt.Sprintf("\nWithout an answer by %s, the answer is: %s.\n", now.Add(p.Human.DecisionTimeout.Duration).UTC().Format(time.RFC3339), p.Human.OnTimeout)
	}
	e := &mailbox.Message{
		Version: mailbox.Version, ID: mailbox.NewMessageID(now, a.Agent), Date: now,
		From: a.Agent, To: p.Human.Agent, Thread: m.Thread, InReplyTo: m.ID,
		Verb: mailbox.Escalate, Item: m.Item, Quantity: m.Quantity, Amount: amount,
		Subject: "ESCALATE: " + ask + "?", Body: body,
	}
	if p.Human.DecisionTimeout.Duration > 0 {
		e.Expires = now.Add(p.Human.DecisionTimeout.Duration)
	}
	return e
}

// ErrDenied is wrapped by Send's error when the policy denied the action.
var ErrDenied = errors.New("denied by policy")

// ErrEscalated is wrapped by Send's error when the action waits for the
// human: the escalation was delivered instead of the message.
var ErrEscalated = errors.New("escalated to the human")

// DecisionError is Send's error for an action not taken: denied (it
// wraps ErrDenied) or waiting for the human (ErrEscalated), with the
// decision, for a caller that needs its rule.
type DecisionError struct {
	Action   Action
	Decision Decision
}

func (e *DecisionError) Error() string {
	m := e.Action.Message
	return fmt.Sprintf("%s %s to %s: %v: %s: %s", m.Verb, m.ID, m.To, e.Unwrap(), e.Decision.Rule, e.Decision.Reason)
}

// Unwrap is ErrEscalated or ErrDenied.
func (e *DecisionError) Unwrap() error {
	if e.Decision.Outcome == Escalate {
		return ErrEscalated
	}
	return ErrDenied
}

// Hint says what a person can do about it.
func (e *DecisionError) Hint() string {
	switch e.Decision.Rule {
	case "breaker.paused":
		return "parley status says why it is paused; parley resume lifts the pause"
	case "policy":
		return "parley policy check names the line of policy.toml to mend"
	}
	if e.Decision.Outcome == Escalate {
		t := e.Action.Message.Thread
		return "the human answers with parley approve " + t + " or parley deny " + t + " --reason ..."
	}
	return "parley policy explain FILE says which rule decides, and why"
}

// Send is the one way an agent acts: it decides a, and delivers the message
// only when allowed. When the human must decide, the ESCALATE goes to the
// human's inbox instead. Either way the decision is in the ledger first.
func (e *Engine) Send(a Action) (Decision, error) {
	d, err := e.Decide(a)
	if err != nil {
		return d, err
	}
	switch d.Outcome {
	case Allow:
		return d, e.root.Send(a.Agent, a.Message)
	case Escalate:
		p, err := e.Policy()
		if err != nil {
			return d, err
		}
		x := EscalationMessage(p, a, d, e.root.Now())
		x.Body = cmdline.ForRoot(e.root.Dir, x.Body) // the answer runs on this root
		if err := e.root.Send(a.Agent, x); err != nil {
			return d, err
		}
		return d, &DecisionError{Action: a, Decision: d}
	}
	return d, &DecisionError{Action: a, Decision: d}
}
