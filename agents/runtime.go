package agents

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parley-dev/parley/agents/llm"
	"github.com/parley-dev/parley/internal/cmdline"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
	"golang.org/x/sys/unix"
)

// RunningError is returned when another process already runs the agent.
type RunningError struct {
	Name string
	PID  string
}

func (e *RunningError) Error() string {
	return fmt.Sprintf("agent %s is already running (pid %s)", e.Name, e.PID)
}

// Runtime runs one agent: it watches the inbox, claims a message, lets the
// role decide, puts every message the role wants to send through the policy,
// sends, saves the role's state durably and only then marks the message
// done. A message claimed but not finished when the process died is handled
// again at the next start; the messages it causes carry ids derived from it,
// so the policy and the receivers see a repeat, not a new action.
type Runtime struct {
	Root  *mailbox.Root
	Team  *Team
	Name  string
	Log   func(line string) // one readable line a step
	Every time.Duration     // the clock's tick for deadlines; default 1s

	agent   *Agent
	role    Role
	engine  *policy.Engine
	state   saved
	written []byte // the state as last saved
	paused  bool
	later   []*mailbox.Claimed // claimed, to be handled when acting is possible again

	ctx     context.Context
	model   *llm.Client  // an Ollama brain's client
	noteErr error        // a model call that could not be recorded
	kept    mailbox.Head // the ledger's head last kept in state/
	// brokenSaid is what was last said of a ledger that does not verify:
	// said once, not at every tick.
	brokenSaid string

	trouble time.Time     // since when the disk is full or failing (trouble.go)
	backoff time.Duration // the wait between two tries meanwhile
}

// Intake is a drop folder's intake whose messages go through the policy,
// with an engine of its own (it runs beside the agent's loop).
type Intake struct {
	*mailbox.Intake
	engine *policy.Engine
}

// PolicyIntake takes in agent's drop folder, putting every message
// through the policy as its sender's action.
func PolicyIntake(r *mailbox.Root, agent, human string) *Intake {
	in := &Intake{Intake: &mailbox.Intake{Root: r, Agent: agent, Human: human}, engine: policy.NewEngine(r)}
	in.Send = func(m *mailbox.Message) error {
		if _, signed := m.Get(mailbox.SignatureHeader); !signed {
			p, err := in.engine.Policy()
			if err != nil {
				return err
			}
			if !p.AllowsUnsigned(m.From, m.Verb, m.To) {
				return fmt.Errorf("an unsigned file from %s may not say %s to %s (the policy's [[unsigned]] rules); send it with parley send, which signs it",
					m.From, m.Verb, m.To)
			}
		}
		_, err := in.engine.Send(policy.Action{Agent: m.From, Message: m})
		return err
	}
	return in
}

// Close closes the intake's engine.
func (in *Intake) Close() error { return in.engine.Close() }

// errLater says a step could not be taken now (parley is paused, or the
// policy cannot be read) and is to be taken again, whole, later.
var errLater = errors.New("not now")

// saved is what the agent keeps as its state (StateOf says where).
type saved struct {
	Handled handled // message ids handled, with what each said
	// Escalated holds, by thread, what the policy sent to the human: sent
	// when the human's APPROVED arrives, given up when a DENIED does.
	Escalated map[string][]*mailbox.Message
	Role      json.RawMessage
}

// handled maps the id of each message handled to what it said (its
// substance): a verified message under a handled id is a repeat only if it
// says the same. A state saved before kept no substance ("").
type handled map[string]string

// UnmarshalJSON reads the map, or the set of ids an older parley saved.
func (h *handled) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err == nil {
		*h = m
		return nil
	}
	var old map[string]bool
	if err := json.Unmarshal(b, &old); err != nil {
		return err
	}
	*h = make(handled, len(old))
	for id := range old {
		(*h)[id] = ""
	}
	return nil
}

// substance is what a message says that a repeat of it says too: not its
// Date or its text, which a step taken again after a crash may word anew.
func substance(m *mailbox.Message) string {
	return strings.Join([]string{m.From, m.To, m.Thread, string(m.Verb), m.Item, strconv.FormatInt(m.Quantity, 10), m.Total().String(), m.InReplyTo}, "|")
}

// Run runs the agent until ctx ends.
func (rt *Runtime) Run(ctx context.Context) error {
	if rt.agent = rt.Team.Agent(rt.Name); rt.agent == nil {
		return fmt.Errorf("no agent named %q in %s", rt.Name, TeamFile)
	}
	if rt.Every <= 0 {
		rt.Every = time.Second
	}
	if rt.Log == nil {
		rt.Log = func(string) {}
	}
	inbox := rt.Root.Inbox(rt.Name)
	if err := inbox.Create(); err != nil {
		return err
	}
	ctx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	release, err := Hold(rt.Root, rt.Name, stopRun)
	if err != nil {
		return err
	}
	defer release()
	rt.ctx = ctx
	rt.engine = policy.NewEngine(rt.Root)
	defer rt.engine.Close()
	defer func() { _ = rt.keepHead() }() // before the engine closes
	if err := rt.reset(); err != nil {
		return err
	}
	claims, err := rt.Root.Claims(rt.Name)
	if err != nil {
		return err
	}
	defer claims.Close()
	if w := claims.Warning(); w != "" {
		rt.Log("warning: " + w)
	}
	if err := rt.recover(claims); err != nil {
		return err
	}
	// Deferred in this order so that they run as: stop the intake, wait
	// for it, then close its engine (which its goroutine uses).
	intake := PolicyIntake(rt.Root, rt.Name, rt.Team.Human)
	defer intake.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	intake.Taken = func(file string, m *mailbox.Message, err error) {
		if err != nil {
			rt.Log(fmt.Sprintf("rejected %s: %v", filepath.Base(file), err))
			if err := intake.engine.Watch(rt.Name); err != nil {
				rt.Log("the circuit breaker cannot count: " + err.Error())
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := intake.Run(ctx); err != nil {
			rt.Log("the drop folder is not taken in: " + err.Error())
		}
	}()

	rt.Log(fmt.Sprintf("%s (%s) is running, pid %d", rt.Name, rt.agent.Role, os.Getpid()))
	next := time.Now()
	for {
		if now := time.Now(); !now.Before(next) {
			if err := rt.tick(claims); err != nil {
				if err := rt.waitOut(err, nil); err != nil {
					return err
				}
			}
			next = now.Add(max(rt.Every, rt.backoff))
		}
		wait, cancelWait := context.WithDeadline(ctx, next)
		c, err := rt.next(wait, claims)
		cancelWait()
		if ctx.Err() != nil {
			if cause := context.Cause(ctx); errors.Is(cause, mailbox.ErrLost) {
				return fmt.Errorf("agent %s: %w", rt.Name, cause)
			}
			rt.Log(rt.Name + " stopped")
			return nil
		}
		switch {
		case errors.Is(err, context.DeadlineExceeded):
		case errors.Is(err, mailbox.ErrRejected):
			rt.Log(err.Error())
			if err := rt.watch(); err != nil {
				return err
			}
		case err != nil:
			// Tried again at the next tick, not at once: an error that
			// lasts must not spin. A full disk is said as one, and backs
			// off.
			if diskTrouble(err) {
				if err := rt.waitOut(fmt.Errorf("inbox: %w", err), nil); err != nil {
					return err
				}
				next = time.Now().Add(rt.backoff)
			} else {
				rt.Log("inbox: " + err.Error())
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(next)):
			}
		default:
			if err := rt.handle(c); err != nil {
				if err := rt.waitOut(err, c); err != nil {
					return err
				}
				next = time.Now().Add(rt.backoff)
			} else {
				rt.recovered()
			}
		}
	}
}

// next claims the next message, waiting until ctx ends. While parley is
// paused, or a message waits to be taken again, nothing more is claimed:
// messages wait in the inbox, and the tick takes what is held, in order.
func (rt *Runtime) next(ctx context.Context, claims *mailbox.Claims) (*mailbox.Claimed, error) {
	if _, paused := rt.engine.Paused(); paused || len(rt.later) > 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return claims.Next(ctx)
}

// tick checks for a pause, handles what was held while acting was not
// possible and what is waiting in the inbox, and only then runs the role's
// timers: a deadline is judged against when messages arrived, not against
// when the agent got round to them (a quote that arrived while the agent
// waited 40 s on its model is weighed before the quote window closes).
func (rt *Runtime) tick(claims *mailbox.Claims) error {
	why, paused := rt.engine.Paused()
	if paused != rt.paused {
		if paused {
			rt.Log("paused: " + strings.SplitN(why, "\n", 2)[0])
		} else {
			rt.Log("resumed")
		}
		rt.paused = paused
	}
	// A heartbeat for parley status, beside the lock: the lock's time says
	// when the agent last looked around.
	now := time.Now()
	_ = os.Chtimes(rt.Root.Inbox(rt.Name).Path("state", "lock"), now, now)
	if paused {
		return nil
	}
	// Errors any process recorded since (files set aside, bounces) may trip
	// the breaker: at once, not at the next action of anyone.
	if err := rt.watch(); err != nil {
		return err
	}
	if err := rt.keepHead(); err != nil {
		return err
	}
	later := rt.later
	rt.later = nil
	for i, c := range later {
		if err := rt.handle(c); err != nil {
			rt.later = append(rt.later, later[i:]...) // kept, in order, for a later tick
			return rt.waitOut(err, c)
		}
	}
	if len(later) > 0 {
		rt.recovered()
	}
	now, err := rt.drain(claims)
	if err != nil || len(rt.later) > 0 {
		// What arrived is not weighed yet: no deadline passes before it is.
		return err
	}
	if err := rt.overdue(now); err != nil {
		return err
	}
	if err := rt.tellAsked(now); err != nil {
		return err
	}
	out := rt.role.Tick(now)
	if err := rt.failed("tick"); err != nil {
		return err
	}
	err = rt.sendTick(out, rt.sent(out))
	if errors.Is(err, errLater) {
		return rt.reset()
	}
	if err != nil {
		return err
	}
	return rt.save() // a no-op unless the tick changed the state
}

// waitingFor is how long a transport other than files is given to hand
// over a message that is waiting.
const waitingFor = 50 * time.Millisecond

// drainRounds bounds how often drain looks again at an inbox that keeps
// filling while it works, so that the timers still run.
const drainRounds = 8

// drain handles every message waiting in the inbox, in the order they
// arrived, and returns a time before which everything that arrived was
// handled: the time the role's timers are run at. It looks again while
// messages came in during the handling (a model call may take a minute),
// a few rounds at most. It stops at the first message that could not be
// handled now (rt.later).
func (rt *Runtime) drain(claims *mailbox.Claims) (time.Time, error) {
	var now time.Time
	for round := 0; ; round++ {
		now = rt.Root.Now()
		var names []string
		if rt.Root.Transport == nil {
			var err error
			if names, err = rt.Root.Inbox(rt.Name).Pending(); err != nil {
				return now, fmt.Errorf("inbox: %w", err)
			}
		}
		handled := 0
		for {
			c, err := rt.claimWaiting(claims, &names)
			if err != nil || c == nil {
				if err != nil || handled == 0 || round == drainRounds-1 {
					return now, err
				}
				break
			}
			handled++
			if err := rt.handle(c); err != nil {
				return now, rt.waitOut(err, c)
			}
			if len(rt.later) > 0 {
				return now, nil
			}
			rt.recovered()
		}
	}
}

// claimWaiting claims the next message that is in the inbox now, or
// returns nil. On files, that is the next of names, the files in new/ when
// the round began (a name starts with the time it was delivered, so they
// come in the order they arrived), whatever the watcher has reported yet;
// on another transport, what it hands over within waitingFor.
func (rt *Runtime) claimWaiting(claims *mailbox.Claims, names *[]string) (*mailbox.Claimed, error) {
	for {
		var c *mailbox.Claimed
		var err error
		if rt.Root.Transport != nil {
			// A server hands over what it holds within a moment; it is not
			// waited for longer.
			ctx, cancel := context.WithTimeout(rt.ctx, waitingFor)
			c, err = claims.Next(ctx)
			cancel()
			if err != nil && !errors.Is(err, mailbox.ErrRejected) {
				return nil, nil // nothing more waiting
			}
		} else {
			if len(*names) == 0 {
				return nil, nil
			}
			name := (*names)[0]
			*names = (*names)[1:]
			c, err = claims.Take(name)
			if errors.Is(err, mailbox.ErrClaimed) || errors.Is(err, mailbox.ErrBusy) {
				continue // taken meanwhile, or not whole yet: the watcher reports it again
			}
		}
		if errors.Is(err, mailbox.ErrRejected) {
			rt.Log(err.Error())
			if err := rt.watch(); err != nil {
				return nil, err
			}
			continue
		}
		return c, err
	}
}

// A sender is a role whose deadlines count from when its messages went
// out (Procurement.Sent).
type sender interface {
	Sent(at time.Time, out []*mailbox.Message)
}

// sent returns when the messages of a step go out — now, after a model
// may have taken a minute to write them: their Date — and tells the role.
func (rt *Runtime) sent(out []*mailbox.Message) time.Time {
	at := rt.Root.Now()
	if s, ok := rt.role.(sender); ok && len(out) > 0 {
		s.Sent(at, out)
	}
	return at
}

// recover handles again what was claimed but not finished.
func (rt *Runtime) recover(claims *mailbox.Claims) error {
	unfinished, rejected, err := claims.Unfinished()
	if err != nil {
		return err
	}
	for _, err := range rejected {
		rt.Log(err.Error() + " (claimed before a stop)")
	}
	for _, c := range unfinished {
		m := c.Message
		rt.Log(fmt.Sprintf("handling again %s %s from %s, claimed before a stop", m.Verb, m.ID, m.From))
		if err := rt.handle(c); err != nil {
			if err := rt.waitOut(err, c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (rt *Runtime) handle(c *mailbox.Claimed) error {
	m := c.Message
	// Only a message its sender really signed is acted on; anything else is
	// moved aside with the reason, and counts towards the breaker —
	// whatever its Message-ID: an altered copy of a message handled before
	// is not a repeat of it.
	if err := rt.verify(m); errors.Is(err, errLater) {
		rt.later = append(rt.later, c)
		return nil
	} else if err != nil {
		rt.Log(fmt.Sprintf("refused %s %s from %s: %v", m.Verb, m.ID, m.From, err))
		return rt.setAside(c, err)
	}
	if was, seen := rt.state.Handled[m.ID]; seen {
		if was != "" && was != substance(m) {
			err := fmt.Errorf("Message-ID %s was handled before for another message (%s); a sender must give each message its own id", m.ID, was)
			rt.Log(fmt.Sprintf("refused %s %s from %s: %v", m.Verb, m.ID, m.From, err))
			return rt.setAside(c, err)
		}
		rt.Log(fmt.Sprintf("← %s %s from %s again: already handled, nothing done", m.Verb, m.ID, m.From))
		return rt.Root.Finish(c, mailbox.FlagDone, "already handled")
	}
	if err := rt.addressed(m); err != nil {
		rt.Log(fmt.Sprintf("refused %s %s from %s: %v", m.Verb, m.ID, m.From, err))
		return rt.Root.SetAside(c, err)
	}
	answer := m.From == rt.Team.Human && (m.Verb == mailbox.Approved || m.Verb == mailbox.Denied) && len(rt.state.Escalated[m.Thread]) > 0
	if spec := rt.Team.Spec(rt.agent); spec != nil && !spec.Acts(m.Verb) && !answer && m.From != mailbox.System {
		// Not a verb its role acts on: set aside, and the sender told.
		why := fmt.Errorf("%s (%s) acts only on %s, not %s (parley.toml [[role]] %s)", rt.Name, spec.Name, strings.Join(spec.Handles, ", "), m.Verb, spec.Name)
		rt.Log(fmt.Sprintf("refused %s %s from %s: %v", m.Verb, m.ID, m.From, why))
		return rt.setAside(c, why)
	}
	rt.Log(fmt.Sprintf("← %s from %s: %s", m.Verb, m.From, subject(m)))
	now := rt.Root.Now()
	err := rt.answered(m, now)
	if err == nil {
		out := rt.role.Receive(now, m)
		if f, ok := rt.role.(failer); ok {
			if ferr := f.failure(); errors.Is(ferr, ErrStopped) {
				return nil // not taken: the message stays claimed, and is handled again at the next start
			} else if ferr != nil {
				// The brain could not take the step: the message is set aside
				// as failed, with why, for a person; the agent goes on.
				rt.Log(fmt.Sprintf("✗ %s %s from %s failed: %v", m.Verb, m.ID, m.From, ferr))
				if err := rt.Root.Finish(c, mailbox.FlagFailed, ferr.Error()); err != nil {
					return err
				}
				rt.state.Handled[m.ID] = substance(m)
				return rt.save()
			}
		}
		err = rt.send(out, m.ID, rt.sent(out))
	}
	if errors.Is(err, errLater) {
		// The message stays claimed and unfinished; the state goes back to
		// what it was before it.
		rt.later = append(rt.later, c)
		return rt.reset()
	}
	if err != nil {
		return err
	}
	if err := rt.release(); err != nil {
		return err
	}
	rt.state.Handled[m.ID] = substance(m)
	if err := rt.save(); err != nil {
		return err
	}
	return rt.Root.Finish(c, mailbox.FlagDone, "")
}

// keepHead keeps the last ledger line the agent verified in its state
// folder, for the next process to check the ledger against: a ledger cut
// or rewritten while the team was stopped is caught at the next start.
func (rt *Runtime) keepHead() error {
	if rt.Root.Transport != nil {
		return nil // the ledger is a stream no editor reaches
	}
	h := rt.engine.Verified()
	if h.Seq == 0 || h == rt.kept {
		return nil
	}
	if err := rt.Root.KeepHead(rt.Name, h); err != nil {
		return err
	}
	rt.kept = h
	return nil
}

// setAside moves a message aside for good, with why, and lets the breaker
// count it at once.
func (rt *Runtime) setAside(c *mailbox.Claimed, why error) error {
	if err := rt.Root.SetAside(c, why); err != nil {
		return err
	}
	return rt.watch()
}

// watch lets the circuit breaker count what was recorded since: a ledger
// that cannot be read just now (a server between leaders) is tried again at
// the next tick; one that does not verify is returned, for broken.
func (rt *Runtime) watch() error {
	err := rt.engine.Watch(rt.Name)
	if err != nil && !errors.Is(err, mailbox.ErrBroken) {
		rt.Log("the circuit breaker cannot count just now: " + err.Error())
		return nil
	}
	return err
}

// addressed checks, as a mail server checks an envelope, that a signed
// message is for this agent and could have been sent: To names it, its
// Date is not further ahead of the clock than the policy lets a sender
// date one (policy.FutureSkew), and a verb that moves money carries an
// amount above zero. A signature proves who wrote a message, not that it
// was meant for whoever finds it in a folder.
func (rt *Runtime) addressed(m *mailbox.Message) error {
	if m.To != rt.Name {
		return fmt.Errorf("it is addressed to %s, not to %s: an agent acts only on messages to it", m.To, rt.Name)
	}
	if now := rt.Root.Now(); m.Date.After(now.Add(policy.FutureSkew)) {
		return fmt.Errorf("it is dated %s, more than %v after this agent's clock (%s)",
			m.Date.Format(time.RFC3339), policy.FutureSkew, now.UTC().Format(time.RFC3339))
	}
	switch m.Verb {
	case mailbox.Approved, mailbox.Order, mailbox.Paid, mailbox.Confirmed:
		if t := m.Total(); t.IsZero() || !t.Amount.IsPositive() {
			return fmt.Errorf("%s moves money, and this one carries %s: it needs an amount above zero", m.Verb, cmp.Or(t.String(), "no amount"))
		}
	}
	return nil
}

// overdue gives up on what waits for a human who did not answer within the
// policy's decision_timeout: deciding it again gets the policy's answer for
// that case (on_timeout), recorded, and the role moves on.
func (rt *Runtime) overdue(now time.Time) error {
	if len(rt.state.Escalated) == 0 {
		return nil
	}
	st, p, err := rt.engine.State()
	if err != nil || p == nil {
		return err
	}
	for _, th := range st.Overdue(p, now) {
		held := rt.state.Escalated[th]
		if len(held) == 0 {
			continue
		}
		delete(rt.state.Escalated, th)
		rt.Log(fmt.Sprintf("%s did not answer on %s in time", rt.Team.Human, th))
		if err := rt.send(held, "timeout|"+th, now); err != nil {
			return err
		}
	}
	return rt.save()
}

// An asker is a role that chases what it awaits (Procurement): it is told,
// from the ledger, on which threads a person's decision is awaited, or
// when the last was given, so that it does not chase an agent whose
// answer waits for the human.
type asker interface {
	// Chasing reports whether something it awaits is past its own due
	// time at now: only then is the ledger's word needed.
	Chasing(now time.Time) bool
	Asked(map[string]time.Time)
}

// tellAsked tells the role where the human's decisions stand: zero for a
// thread where one is awaited now, else when the last was answered (or
// lapsed).
func (rt *Runtime) tellAsked(now time.Time) error {
	role := rt.role
	if b, ok := role.(*Model); ok {
		role = b.Rules
	}
	a, ok := role.(asker)
	if !ok || !a.Chasing(now) {
		return nil // the engine's state is read under the ledger's lock: not every tick
	}
	st, _, err := rt.engine.State()
	if err != nil {
		return err
	}
	a.Asked(AskedOf(st.Escalations(rt.Team.Human, ""), now))
	return nil
}

// AskedOf is, by thread, where the human's decisions stand at now: zero
// where one is awaited, else when the last was answered or lapsed.
func AskedOf(xs []*policy.Escalation, now time.Time) map[string]time.Time {
	asked := map[string]time.Time{}
	for _, x := range xs {
		var at time.Time
		switch x.State(now) {
		case policy.Waiting:
		case policy.Answered:
			at = x.AnsweredAt
		case policy.Expired:
			at = x.Expires
		default:
			continue
		}
		if was, seen := asked[x.Thread]; seen && (was.IsZero() || was.After(at)) && !at.IsZero() {
			continue // one still awaited, or a later answer, stands
		}
		asked[x.Thread] = at
	}
	return asked
}

// release frees the money of approvals the role no longer needs (a deal
// that fell through), rather than leaving it held until it lapses.
func (rt *Runtime) release() error {
	role := rt.role
	if b, ok := role.(*Model); ok {
		role = b.Rules
	}
	f, ok := role.(*Finance)
	if !ok {
		return nil
	}
	for _, x := range f.Release {
		if err := rt.engine.Release(rt.Name, x.Thread, x.Vendor, "the deal fell through"); err != nil {
			return err
		}
		rt.Log("released the approval held for " + x.Thread)
	}
	f.Release = nil
	return nil
}

// verify checks m's signature against the root's public keys, read again
// when the keys folder changes (a new agent, a rotation).
func (rt *Runtime) verify(m *mailbox.Message) error {
	if _, err := os.Stat(filepath.Join(rt.Root.Dir, mailbox.KeysDir)); err != nil {
		return fmt.Errorf("%w: the root has no keys (parley init makes them)", mailbox.ErrUnknownKey)
	}
	// Read afresh each time (a handful of small files): a key rotated or
	// edited in place is seen at once.
	ring, err := rt.Root.Keys()
	if err != nil {
		rt.Log("the keys cannot be read, so nothing can be checked: " + err.Error())
		return errLater
	}
	return ring.Verify(m)
}

// answered acts on the human's answer to what this agent escalated: the
// held messages go out (the policy now finds the human's approval), or the
// role is told they were denied.
func (rt *Runtime) answered(m *mailbox.Message, now time.Time) error {
	held := rt.state.Escalated[m.Thread]
	if m.From != rt.Team.Human || len(held) == 0 || (m.Verb != mailbox.Approved && m.Verb != mailbox.Denied) {
		return nil
	}
	delete(rt.state.Escalated, m.Thread)
	if m.Verb == mailbox.Approved {
		return rt.send(held, m.ID+"|approved", now)
	}
	for _, h := range held {
		d := policy.Decision{Outcome: policy.Deny, Rule: "human.denied", Reason: rt.Team.Human + " denied it: " + firstLine(m.Body, m.Subject)}
		next := rt.role.Denied(now, h, d)
		if err := rt.failed("denied " + h.ID); err != nil {
			return err
		}
		if err := rt.send(next, m.ID+"|denied|"+h.ID, now); err != nil {
			return err
		}
	}
	return nil
}

func subject(m *mailbox.Message) string {
	if m.Subject != "" {
		return m.Subject
	}
	return m.Thread
}

// sendTick sends what a tick produced, each message with an id drawn from
// its content: the same step taken again after a crash (its state not yet
// saved) makes the same messages, with the same ids, and the policy and the
// receivers see a repeat.
func (rt *Runtime) sendTick(out []*mailbox.Message, now time.Time) error {
	for _, m := range out {
		if m.ID == "" {
			m.ID = tickID(rt.Name, m)
		}
	}
	return rt.send(out, "tick", now)
}

// tickID is the id of a message agent's clock sends: drawn from what it
// says, not its text, which a model may word differently when the step is
// taken again.
func tickID(agent string, m *mailbox.Message) string {
	c := *m
	c.ID, c.Date, c.Version, c.From, c.Body = "", time.Time{}, "", agent, ""
	sum := sha256.Sum256(c.Marshal())
	return "<" + hex.EncodeToString(sum[:12]) + "." + agent + "@parley>"
}

// send puts each message through the policy and delivers what it allows.
// Ids derive from key: the same cause gives the same ids, so a message sent
// again after a crash is a repeat the policy and the receiver recognise.
func (rt *Runtime) send(out []*mailbox.Message, key string, now time.Time) error {
	for i, m := range out {
		if m.ID == "" {
			m.ID = MessageID(rt.Name, key, i)
		}
		m.Version, m.Date, m.From = cmp.Or(rt.agent.Protocol, mailbox.Version), now, rt.Name
		// A role writes its commands for the default root; the person who
		// reads the message runs them on this one.
		m.Body = cmdline.ForRoot(rt.Root.Dir, m.Body)
		err := m.Validate()
		if spec := rt.Team.Spec(rt.agent); err == nil && spec != nil {
			err = spec.May(m.Verb, m.To)
		}
		if err != nil {
			// A brain's mistake: recorded, counted by the breaker, not sent.
			rt.Log(fmt.Sprintf("not sent: %s to %s: %v", m.Verb, m.To, err))
			e := mailbox.MessageEntry(rt.Name, "error", m)
			e.Reason = err.Error()
			if l, lerr := rt.Root.Ledger(); lerr == nil {
				if _, err := l.Append(e); err != nil {
					return err
				}
			}
			continue
		}
		d, err := rt.engine.Send(policy.Action{Agent: rt.Name, Message: m})
		switch {
		case errors.Is(err, policy.ErrDenied) && (d.Rule == "breaker.paused" || d.Rule == "policy"):
			// Not a no to this action: nothing may act just now. The step is
			// taken again, whole, when the pause is lifted or the policy mended.
			rt.Log(fmt.Sprintf("waiting: %s to %s: %s", m.Verb, m.To, d.Reason))
			return errLater
		case err == nil:
			rt.Log(fmt.Sprintf("→ %s %s: %s", m.To, m.Verb, subject(m)))
		case errors.Is(err, policy.ErrEscalated):
			rt.Log(fmt.Sprintf("⇡ %s %s to %s waits for %s: %s", m.Verb, m.Thread, m.To, rt.Team.Human, d.Reason))
			rt.state.Escalated[m.Thread] = append(rt.state.Escalated[m.Thread], m)
		case errors.Is(err, policy.ErrDenied):
			rt.Log(fmt.Sprintf("✗ %s to %s denied by %s: %s", m.Verb, m.To, d.Rule, d.Reason))
			next := rt.role.Denied(now, m, d)
			if err := rt.failed("denied " + m.ID); err != nil {
				return err
			}
			if err := rt.send(next, key+"|denied|"+m.ID, now); err != nil {
				return err
			}
		default:
			return err
		}
	}
	return nil
}

// MessageID is the id of the i-th message agent sends for a cause (the id
// of the message it handles): the same cause gives the same ids, after a
// crash or in a replay.
func MessageID(agent, key string, i int) string {
	sum := sha256.Sum256([]byte(agent + "\x00" + key + "\x00" + strconv.Itoa(i)))
	return "<" + hex.EncodeToString(sum[:12]) + "." + agent + "@parley>"
}

// failed records a step of the brain that failed outside a message (a
// tick, a refusal): a line in the ledger, which the breaker counts.
func (rt *Runtime) failed(step string) error {
	f, ok := rt.role.(failer)
	if !ok {
		return nil
	}
	ferr := f.failure()
	if ferr == nil || errors.Is(ferr, ErrStopped) {
		return nil
	}
	rt.Log(fmt.Sprintf("✗ %s: %v", step, ferr))
	l, err := rt.Root.Ledger()
	if err != nil {
		return err
	}
	_, err = l.Append(mailbox.Entry{Agent: rt.Name, Event: "error", Reason: step + ": " + ferr.Error()})
	return err
}

// reset makes the role afresh from its terms and its saved state: at the
// start, and after a step that could not be finished, whose changes to the
// state in memory must not count.
func (rt *Runtime) reset() error {
	if rt.agent.Brain == "exec" {
		// A program of the user's: no rules underneath, its state its own.
		rt.role, rt.written = &Exec{Agent: rt.agent, Dir: rt.Root.Dir, Ctx: rt.ctx}, nil
		return rt.load()
	}
	role, err := NewRole(rt.agent, rt.Team, rt.Root.Inbox(rt.Name).Path(StockFile))
	if err != nil {
		return err
	}
	pol, _ := rt.engine.Policy() // nil when it cannot be read: then nothing is sent anyway
	if p, ok := role.(*Procurement); ok {
		p.Bind(pol)
	}
	if rt.agent.Brain == "ollama" {
		if role, err = rt.brain(role, pol); err != nil {
			return err
		}
	}
	rt.role, rt.written = role, nil
	return rt.load()
}

// EventLLM is the ledger's record of a use of a model: a call, with its
// tokens and tape, or what the agent did when the model failed.
const EventLLM = "llm"

// brain wraps the rules of an agent whose brain is ollama in its model.
func (rt *Runtime) brain(rules Role, pol *policy.Policy) (Role, error) {
	if rt.model == nil {
		c, err := llm.New(rt.agent.ModelConfig())
		if err != nil {
			return nil, fmt.Errorf("agent %s: %w", rt.Name, err)
		}
		rt.model = c
	}
	b, err := NewModel(rt.Root.Dir, rt.Team, rt.agent, rules, pol)
	if err != nil {
		return nil, err
	}
	b.Ask = TapesOf(rt.Root.Dir, rt.Name).Recording(rt.model.Ask)
	b.Note = rt.note
	b.History = func(thread, cause string) string { return History(rt.Root, rt.Name, thread, cause) }
	b.Ctx = rt.ctx
	return b, nil
}

// note records a use of the model in the ledger.
func (rt *Runtime) note(n Note) {
	e := NoteEntry(rt.Name, n)
	rt.Log(fmt.Sprintf("model %s: %s: %s", n.Purpose, n.Outcome, e.Reason))
	l, err := rt.Root.Ledger()
	if err == nil {
		_, err = l.Append(e)
	}
	if err != nil && rt.noteErr == nil {
		rt.noteErr = fmt.Errorf("record a model call: %w", err)
	}
}

func (rt *Runtime) statePath() string { return StatePath(rt.Root, rt.Name) }

// StatePath is where agent name keeps its state in root r's folder.
func StatePath(r *mailbox.Root, name string) string { return r.Inbox(name).Path("state", "state.json") }

// StateOf is what agent name last saved as its state (nil: nothing): kept
// by the transport where it spans machines (mailbox.StateStore), so that a
// process that takes the agent over goes on from it; else, and before the
// first save there, in ROOT/NAME/state/state.json.
func StateOf(r *mailbox.Root, name string) ([]byte, error) {
	if store, ok := r.Transport.(mailbox.StateStore); ok {
		data, err := store.LoadState(name)
		if err != nil || data != nil {
			return data, err
		}
	}
	data, err := os.ReadFile(StatePath(r, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	return data, nil
}

func (rt *Runtime) load() error {
	rt.state = saved{Handled: handled{}, Escalated: map[string][]*mailbox.Message{}}
	data, err := StateOf(rt.Root, rt.Name)
	if err != nil {
		return err
	}
	if data == nil {
		return nil
	}
	if err := json.Unmarshal(data, &rt.state); err != nil {
		return fmt.Errorf("load state %s: %w", rt.statePath(), err)
	}
	if rt.state.Handled == nil {
		rt.state.Handled = handled{}
	}
	if rt.state.Escalated == nil {
		rt.state.Escalated = map[string][]*mailbox.Message{}
	}
	if len(rt.state.Role) > 0 {
		if err := json.Unmarshal(rt.state.Role, rt.role); err != nil {
			return fmt.Errorf("load state %s: %w", rt.statePath(), err)
		}
	}
	return nil
}

// save writes the state durably — a temporary file, fsync, rename, and the
// folder synced; or the transport's store (StateOf) — before the message
// that changed it is marked done.
func (rt *Runtime) save() error {
	if err := rt.noteErr; err != nil {
		rt.noteErr = nil
		return err
	}
	role, err := json.Marshal(rt.role)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	rt.state.Role = role
	data, err := json.MarshalIndent(rt.state, "", "  ")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if bytes.Equal(data, rt.written) {
		return nil
	}
	if store, ok := rt.Root.Transport.(mailbox.StateStore); ok {
		if err := store.SaveState(rt.Name, data); err != nil {
			return err
		}
	} else if err := mailbox.WriteDurable(rt.statePath(), data); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	rt.written = data
	return nil
}

// Lock holds an exclusive lock on the agent's lock file for the process's
// lifetime (nq's pattern): a second copy of the agent refuses to start, and
// says who holds it. The returned function lets go.
func Lock(name, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock agent %s: %w", name, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &RunningError{Name: name, PID: strings.TrimSpace(string(pid))}
		}
		return nil, fmt.Errorf("lock agent %s: %w", name, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock agent %s: %w", name, err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock agent %s: %w", name, err)
	}
	return func() { f.Close() }, nil
}
