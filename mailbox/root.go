package mailbox

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// LedgerFile is the ledger's name in a root.
const LedgerFile = "ledger.jsonl"

// System is the name parley itself uses as the sender of bounces and of
// errors about files that could not be accepted. It has no inbox.
const System = "parley"

// ErrNoRoot is returned by OpenRoot for a folder that is not a parley root.
var ErrNoRoot = errors.New("not a parley root")

// UnknownRecipientError is returned for a message to an agent with no inbox.
type UnknownRecipientError struct {
	Name   string
	Agents []string
}

func (e *UnknownRecipientError) Error() string {
	return fmt.Sprintf("no agent named %q (agents: %s)", e.Name, strings.Join(e.Agents, ", "))
}

// Root is a mailbox root: one inbox per agent and the shared ledger.
type Root struct {
	Dir string
	Now func() time.Time

	once   sync.Once
	ledger *Ledger
	err    error

	keyMu sync.Mutex
	keys  map[string]cachedKey // the private keys read so far, by agent
}

// cachedKey is a private key and its file's time: a rotation is seen.
type cachedKey struct {
	key  ed25519.PrivateKey
	when time.Time
}

// OpenRoot opens an existing root.
func OpenRoot(dir string, now func() time.Time) (*Root, error) {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoRoot)
	}
	if now == nil {
		now = time.Now
	}
	return &Root{Dir: dir, Now: now}, nil
}

// Inbox returns the inbox of the agent name (which may not exist).
func (r *Root) Inbox(name string) Maildir { return Maildir{Dir: filepath.Join(r.Dir, name)} }

// Agents lists the agents that have an inbox, in name order.
func (r *Root) Agents() ([]string, error) {
	entries, err := os.ReadDir(r.Dir)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && ValidName(e.Name()) && r.Inbox(e.Name()).Exists() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Ledger opens the root's ledger once and returns it.
func (r *Root) Ledger() (*Ledger, error) {
	r.once.Do(func() {
		r.ledger, r.err = OpenLedger(filepath.Join(r.Dir, LedgerFile), r.Now)
	})
	return r.ledger, r.err
}

// Close closes the ledger if it was opened.
func (r *Root) Close() error {
	if r.ledger != nil {
		return r.ledger.Close()
	}
	return nil
}

func (r *Root) record(entries ...Entry) error {
	l, err := r.Ledger()
	if err != nil {
		return err
	}
	_, err = l.Append(entries...)
	return err
}

// Deliver validates m, delivers it into its recipient's inbox and records
// it, as actor. A recipient with no inbox is an *UnknownRecipientError and
// nothing is written.
func (r *Root) Deliver(actor string, m *Message) (string, error) {
	if err := m.Validate(); err != nil {
		return "", fmt.Errorf("deliver %s: %w", m.ID, err)
	}
	inbox := r.Inbox(m.To)
	if !inbox.Exists() {
		agents, _ := r.Agents()
		return "", fmt.Errorf("deliver %s: %w", m.ID, &UnknownRecipientError{Name: m.To, Agents: agents})
	}
	if err := r.sign(m); err != nil {
		return "", fmt.Errorf("deliver %s: %w", m.ID, err)
	}
	name, err := inbox.Deliver(m.Marshal(), r.Now())
	if err != nil {
		return "", err
	}
	e := MessageEntry(actor, EventDelivered, m)
	e.File = filepath.Join(m.To, "new", name)
	if err := r.record(e); err != nil {
		return name, fmt.Errorf("deliver %s: %w", m.ID, err)
	}
	return name, nil
}

// sign signs m with its sender's private key, where the root has one (a
// root made before keys, or a sender with none, delivers unsigned, and
// agents refuse it).
func (r *Root) sign(m *Message) error {
	r.keyMu.Lock()
	defer r.keyMu.Unlock()
	st, err := os.Stat(privateFile(r.Dir, m.From))
	if err != nil {
		return nil
	}
	c, ok := r.keys[m.From]
	if !ok || !c.when.Equal(st.ModTime()) {
		k, err := r.PrivateKey(m.From)
		if err != nil {
			return err
		}
		if r.keys == nil {
			r.keys = map[string]cachedKey{}
		}
		c = cachedKey{key: k, when: st.ModTime()}
		r.keys[m.From] = c
	}
	Sign(m, c.key)
	return nil
}

// Send is Deliver for agents: a message to an agent that does not exist (or
// was removed) comes back to its sender as an ERROR carrying the original,
// and the bounce is recorded. It fails only when neither can be delivered.
func (r *Root) Send(actor string, m *Message) error {
	_, err := r.Deliver(actor, m)
	var unknown *UnknownRecipientError
	if !errors.As(err, &unknown) {
		return err
	}
	bounce := r.errorTo(m, fmt.Sprintf("undeliverable: %v", unknown),
		"Your message could not be delivered: there is no agent named "+m.To+".\n"+
			"Agents: "+strings.Join(unknown.Agents, ", ")+"\n\n"+
			"----- The original message follows -----\n"+string(m.Marshal()))
	e := MessageEntry(actor, EventBounced, m)
	e.Reason = unknown.Error()
	if err := r.record(e); err != nil {
		return err
	}
	if _, err := r.Deliver(System, bounce); err != nil {
		return fmt.Errorf("bounce %s to %s: %w", m.ID, m.From, err)
	}
	return nil
}

// errorTo builds an ERROR from parley to the sender of orig.
func (r *Root) errorTo(orig *Message, subject, body string) *Message {
	now := r.Now()
	e := &Message{
		Version: Version, ID: NewMessageID(now, System), Date: now,
		From: System, To: orig.From, Thread: orig.Thread, InReplyTo: orig.ID,
		Verb: Error, Subject: "ERROR: " + subject, Body: body,
	}
	if e.Thread == "" {
		e.Thread = NewThreadID(now, "error")
	}
	return e
}

// Claimed is a message an agent took from its inbox.
type Claimed struct {
	Agent   string
	Name    string // its name in cur/
	Message *Message
}

// ErrRejected is wrapped by Claim's error for a file that was not a valid
// message: it was moved to rejected/ with a .err, and its sender told.
var ErrRejected = errors.New("rejected")

// Claim takes the message name from agent's new/, reads it and records the
// claim. A file that is not a valid message is rejected (see Reject) and
// Claim returns an error wrapping ErrRejected; ErrClaimed and ErrBusy are
// passed on from Maildir.Claim.
func (r *Root) Claim(agent, name string) (*Claimed, error) {
	inbox := r.Inbox(agent)
	claimed, err := inbox.Claim(name)
	if err != nil {
		return nil, err
	}
	path := inbox.Path("cur", claimed)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", name, err)
	}
	m, err := Parse(data)
	if err == nil {
		err = m.Validate()
	}
	if err != nil {
		if rerr := r.Reject(agent, path, m, err); rerr != nil {
			return nil, rerr
		}
		return nil, fmt.Errorf("claim %s: %w: %w", name, ErrRejected, err)
	}
	e := MessageEntry(agent, EventClaimed, m)
	e.File = filepath.Join(agent, "cur", claimed)
	if err := r.record(e); err != nil {
		return nil, err
	}
	return &Claimed{Agent: agent, Name: claimed, Message: m}, nil
}

// Finish marks a claimed message with flags (FlagDone, FlagAnswered,
// FlagFailed) and records it: done, or failed with the reason.
func (r *Root) Finish(c *Claimed, flags, reason string) error {
	name, err := r.Inbox(c.Agent).Finish(c.Name, flags)
	if err != nil {
		return err
	}
	event := EventDone
	if strings.Contains(flags, FlagFailed) {
		event = EventFailed
	}
	e := MessageEntry(c.Agent, event, c.Message)
	e.File, e.Reason = filepath.Join(c.Agent, "cur", name), reason
	return r.record(e)
}

// Reject moves the file at path (in agent's inbox) to rejected/ with a
// NAME.err that says what is wrong, records it, and sends its sender an
// ERROR when the sender can be known (m may be nil or partly read).
func (r *Root) Reject(agent, path string, m *Message, reason error) error {
	text := reason.Error()
	var pe *ParseError
	if errors.As(reason, &pe) && pe.Hint != "" {
		text = fmt.Sprintf("%s\nhow to fix it: %s", reason, pe.Hint)
	}
	dst, err := r.Inbox(agent).Reject(path, fmt.Sprintf("%s: %s", filepath.Base(path), text))
	if err != nil {
		return err
	}
	e := MessageEntry(agent, EventRejected, m)
	e.File, e.Reason = filepath.Join(agent, "rejected", filepath.Base(dst)), reason.Error()
	if err := r.record(e); err != nil {
		return err
	}
	if m == nil || m.From == "" || m.From == agent || !r.Inbox(m.From).Exists() {
		return nil
	}
	notice := r.errorTo(m, "rejected by "+agent+": "+truncate(reason.Error(), 120),
		"Your message to "+agent+" could not be accepted:\n\n  "+text+"\n\n"+
			"It was moved to "+filepath.Join(agent, "rejected", filepath.Base(dst))+", with the reason beside it.\n")
	if _, err := r.Deliver(System, notice); err != nil {
		return fmt.Errorf("tell %s of rejection: %w", m.From, err)
	}
	return nil
}
