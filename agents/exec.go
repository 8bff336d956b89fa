package agents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
)

// Exec is the brain of an agent whose parley.toml says brain = "exec": a
// program in any language, run once for each step. It gets the step on
// standard input as one JSON object — the message (or a tick, or a
// refusal), the agent's own state as the program last left it — and prints
// one JSON object: the messages to send and its new state (docs/EXEC.md).
// Every message still passes the policy. A program that fails (exits
// non-zero, hangs past the timeout, prints what is not that object, asks
// for a message that is not valid) fails the step: the message is set
// aside as failed, with the reason, and the agent goes on.
type Exec struct {
	Agent *Agent          `json:"-"`
	Dir   string          `json:"-"` // the root: the program runs there
	Ctx   context.Context `json:"-"`
	// State is the program's own state, as it last returned it.
	State json.RawMessage `json:",omitempty"`

	failed   error
	lastTick time.Time
}

// ExecInput is what the program reads.
type ExecInput struct {
	Parley   int             `json:"parley"`  // the protocol version: 1
	Event    string          `json:"event"`   // message, tick or denied
	Now      time.Time       `json:"now"`     // the clock's time
	Agent    string          `json:"agent"`   // its name
	Role     string          `json:"role"`    // its role
	Message  *ExecMessage    `json:"message"` // the message (or, with denied, the one refused)
	Decision *ExecDecision   `json:"decision,omitempty"`
	State    json.RawMessage `json:"state"` // as the program last returned it; null at first
}

// ExecDecision is the policy's refusal of a message the program asked for.
type ExecDecision struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

// ExecMessage is a message as the program reads and writes it: money as
// decimal strings with their currency ("4.80 USD"), dates as YYYY-MM-DD.
type ExecMessage struct {
	ID        string `json:"id,omitempty"`
	From      string `json:"from,omitempty"`
	To        string `json:"to"`
	Thread    string `json:"thread,omitempty"`
	InReplyTo string `json:"in_reply_to,omitempty"`
	Verb      string `json:"verb"`
	Item      string `json:"item,omitempty"`
	Quantity  int64  `json:"quantity,omitempty"`
	UnitPrice string `json:"unit_price,omitempty"`
	Amount    string `json:"amount,omitempty"`
	DeliverBy string `json:"deliver_by,omitempty"`
	Subject   string `json:"subject,omitempty"`
	Body      string `json:"body,omitempty"`
}

// ExecOutput is what the program prints.
type ExecOutput struct {
	Send  []ExecMessage   `json:"send"`
	State json.RawMessage `json:"state"`
}

// Receive runs the program on a message.
func (b *Exec) Receive(now time.Time, m *mailbox.Message) []*mailbox.Message {
	return b.step(now, ExecInput{Event: "message", Message: execMessage(m)}, m)
}

// Tick runs the program when its every has passed since the last tick.
func (b *Exec) Tick(now time.Time) []*mailbox.Message {
	if b.Agent.Every.Duration <= 0 || now.Sub(b.lastTick) < b.Agent.Every.Duration {
		return nil
	}
	b.lastTick = now
	return b.step(now, ExecInput{Event: "tick"}, nil)
}

// Denied tells the program the policy refused a message it asked for.
func (b *Exec) Denied(now time.Time, m *mailbox.Message, d policy.Decision) []*mailbox.Message {
	return b.step(now, ExecInput{Event: "denied", Message: execMessage(m), Decision: &ExecDecision{Rule: d.Rule, Reason: d.Reason}}, m)
}

// failure is the last step's failure, taken once: the runtime sets the
// message aside as failed.
func (b *Exec) failure() error {
	err := b.failed
	b.failed = nil
	return err
}

// step runs the program once and turns its answer into messages; on any
// failure it sends nothing, keeps the state, and says why.
func (b *Exec) step(now time.Time, in ExecInput, cause *mailbox.Message) []*mailbox.Message {
	b.failed = nil
	in.Parley, in.Now, in.Agent, in.Role, in.State = 1, now.UTC(), b.Agent.Name, b.Agent.Role, b.State
	if len(in.State) == 0 {
		in.State = json.RawMessage("null")
	}
	out, err := b.run(in)
	if err == nil {
		var msgs []*mailbox.Message
		if msgs, err = b.messages(out, cause); err == nil {
			if in.Event == "tick" {
				// Ids from the tick's time and the state it began from: two
				// ticks that send the same words are two messages.
				key := "tick|" + now.UTC().Format(time.RFC3339Nano) + "|" + string(in.State)
				for i, m := range msgs {
					m.ID = MessageID(b.Agent.Name, key, i)
				}
			}
			if st := bytes.TrimSpace(out.State); len(st) > 0 && !bytes.Equal(st, []byte("null")) {
				b.State = out.State
			}
			return msgs
		}
	}
	if errors.Is(err, ErrStopped) {
		b.failed = err
		return nil
	}
	b.failed = fmt.Errorf("exec brain %s: %w", strings.Join(b.Agent.Command, " "), err)
	return nil
}

// run starts the program, hands it the input and reads its answer.
func (b *Exec) run(in ExecInput) (ExecOutput, error) {
	var out ExecOutput
	data, err := json.Marshal(in)
	if err != nil {
		return out, err
	}
	ctx := b.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, b.Agent.Timeout.Duration)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.Agent.Command[0], b.Agent.Command[1:]...)
	cmd.Dir = b.Dir
	cmd.Stdin = bytes.NewReader(append(data, '\n'))
	// The program and whatever it starts are one process group, stopped
	// together; a child that keeps the pipes open is not waited on for ever.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	stdout, stderr := &capped{max: maxOutput}, &capped{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err = cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		err = nil // it answered and exited; a child it left behind held the pipe
	}
	switch {
	case b.Ctx != nil && b.Ctx.Err() != nil:
		return out, ErrStopped
	case ctx.Err() == context.DeadlineExceeded:
		return out, fmt.Errorf("no answer within %s", b.Agent.Timeout.Duration)
	case err != nil:
		if why := lastLine(stderr.buf.String()); why != "" {
			return out, fmt.Errorf("%w: %s", err, why)
		}
		return out, err
	case stdout.over:
		return out, fmt.Errorf("it printed more than %d bytes", maxOutput)
	}
	dec := json.NewDecoder(bytes.NewReader(stdout.buf.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return out, fmt.Errorf(`its output is not {"send": [...], "state": ...}: %w (it printed %q)`, err, clip(string(stdout.buf.Bytes()[:min(stdout.buf.Len(), 200)]), 120))
	}
	if dec.More() {
		return out, errors.New(`it printed more after its {"send": [...], "state": ...}`)
	}
	return out, nil
}

// messages checks what the program asked to send, message by message:
// a thread, and the sender's own name, are filled in; the rest must be a
// valid message.
func (b *Exec) messages(out ExecOutput, cause *mailbox.Message) ([]*mailbox.Message, error) {
	var msgs []*mailbox.Message
	for i, x := range out.Send {
		m := &mailbox.Message{From: b.Agent.Name, To: x.To, Thread: x.Thread, InReplyTo: x.InReplyTo, Verb: mailbox.Verb(strings.ToUpper(x.Verb)),
			Item: x.Item, Quantity: x.Quantity, Subject: x.Subject, Body: x.Body}
		if m.Thread == "" && cause != nil {
			m.Thread = cause.Thread
		}
		if m.InReplyTo == "" && cause != nil && m.To == cause.From && m.Thread == cause.Thread {
			m.InReplyTo = cause.ID
		}
		where := fmt.Sprintf("send[%d]", i)
		for _, f := range []struct {
			text string
			dst  *mailbox.Money
			name string
		}{{x.UnitPrice, &m.UnitPrice, "unit_price"}, {x.Amount, &m.Amount, "amount"}} {
			if f.text == "" {
				continue
			}
			v, err := mailbox.ParseMoney(f.text)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", where, f.name, err)
			}
			*f.dst = v
		}
		if x.DeliverBy != "" {
			t, err := time.Parse(time.DateOnly, x.DeliverBy)
			if err != nil {
				return nil, fmt.Errorf("%s.deliver_by %q is not a date such as 2026-12-01", where, x.DeliverBy)
			}
			m.DeliverBy = t
		}
		if !mailbox.ValidName(m.To) {
			return nil, fmt.Errorf("%s.to %q is not an agent's name", where, x.To)
		}
		if !m.Verb.Valid() {
			return nil, fmt.Errorf("%s.verb %q is not a verb (%s)", where, x.Verb, mailbox.VerbList())
		}
		if m.Thread == "" {
			return nil, fmt.Errorf("%s has no thread (a tick's messages name theirs)", where)
		}
		// The runtime fills in id, date and version; the rest must hold.
		check := *m
		check.ID, check.Date, check.Version = "<check@parley>", time.Unix(0, 0), mailbox.Version
		if err := check.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// execMessage is m as the program reads it.
func execMessage(m *mailbox.Message) *ExecMessage {
	if m == nil {
		return nil
	}
	x := &ExecMessage{ID: m.ID, From: m.From, To: m.To, Thread: m.Thread, InReplyTo: m.InReplyTo, Verb: string(m.Verb),
		Item: m.Item, Quantity: m.Quantity, Subject: m.Subject, Body: m.Body}
	if !m.UnitPrice.IsZero() {
		x.UnitPrice = m.UnitPrice.String()
	}
	if !m.Amount.IsZero() {
		x.Amount = m.Amount.String()
	}
	if !m.DeliverBy.IsZero() {
		x.DeliverBy = m.DeliverBy.Format(time.DateOnly)
	}
	return x
}

// A failer is a brain whose step can fail as a whole (an exec brain's
// program crashed): the runtime sets the message aside as failed, with
// the reason, rather than done.
type failer interface{ failure() error }

var _ failer = (*Exec)(nil)

// lastLine is the last line of a program's standard error that says
// something: where a Python traceback, say, names the error.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// ErrStopped says an exec brain's step did not happen: the agent is
// stopping. The message is handled again when it starts.
var ErrStopped = errors.New("the agent stopped during the step")

// maxOutput is the most an exec brain may print in one step.
const maxOutput = 1 << 20

// capped keeps at most max bytes, and says whether there were more.
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room < len(p) {
		c.over = true
		c.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.buf.Write(p)
}
