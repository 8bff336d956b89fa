package mailbox

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/parley-dev/parley/internal/cmdline"
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

// Root is a mailbox root: one inbox per agent and the shared ledger. Its
// folder holds the team, the policy, the keys and each agent's state; its
// messages and ledger go through its Transport.
type Root struct {
	Dir string
	Now func() time.Time
	// Transport carries the messages and keeps the ledger: nil for the
	// Maildirs and ledger.jsonl in Dir. The Root closes it.
	Transport Transport
	// MaxMessageSize is the largest message file read from an inbox, in
	// bytes (parley.toml's max_message_size): DefaultMaxMessageSize when
	// 0. A larger file is set aside unread, and a larger message is not
	// delivered.
	MaxMessageSize int64

	ledgerMu sync.Mutex
	ledger   Journal

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
func (r *Root) Inbox(name string) Maildir {
	return Maildir{Dir: filepath.Join(r.Dir, name), Max: r.MaxMessageSize}
}

// maxSize is the size limit on a message.
func (r *Root) maxSize() int64 {
	if r.MaxMessageSize > 0 {
		return r.MaxMessageSize
	}
	return DefaultMaxMessageSize
}

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

func (r *Root) transport() Transport {
	if r.Transport == nil {
		return Files{Dir: r.Dir, Now: r.Now, Max: r.MaxMessageSize}
	}
	return r.Transport
}

// Ledger opens the root's ledger once and returns it. An open that failed
// (a ledger that does not verify, a full disk, a torn tail that could not
// be set aside) is tried again at the next call.
func (r *Root) Ledger() (Journal, error) {
	r.ledgerMu.Lock()
	defer r.ledgerMu.Unlock()
	if r.ledger != nil {
		return r.ledger, nil
	}
	l, err := r.transport().Journal()
	if err != nil {
		return nil, err
	}
	r.ledger = l
	return l, nil
}

// Journal opens the ledger with a read position of its own (the policy
// engine's, which follows every line); the caller closes it.
func (r *Root) Journal() (Journal, error) { return r.transport().Journal() }

// JournalFrom is Journal starting at a checkpoint's position, on a
// transport that can (files; see OpenLedgerFrom); on another, from the
// start, as Journal.
func (r *Root) JournalFrom(from Position) (Journal, error) {
	if t, ok := r.transport().(interface {
		JournalFrom(Position) (Journal, error)
	}); ok {
		return t.JournalFrom(from)
	}
	return r.transport().Journal()
}

// LedgerPath is the path of the ledger as a JSONL file, to read: the
// ledger itself on files; on a transport that keeps it elsewhere, the
// root's copy, brought up to date first.
func (r *Root) LedgerPath() (string, error) {
	path := filepath.Join(r.Dir, LedgerFile)
	src, ok := r.Transport.(Copied)
	if !ok {
		return path, nil
	}
	l, err := openLedger(path, r.Now, true, nil)
	if err != nil {
		return "", err
	}
	defer l.Close()
	return path, l.CopyFrom(src)
}

// Close closes the ledger if it was opened, and the transport.
func (r *Root) Close() error {
	var err error
	r.ledgerMu.Lock()
	if r.ledger != nil {
		err = r.ledger.Close()
		r.ledger = nil
	}
	r.ledgerMu.Unlock()
	return errors.Join(err, r.transport().Close())
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
// it, as actor. It returns where the message is (a path relative to the
// root, for a Maildir). A recipient with no inbox is an
// *UnknownRecipientError and nothing is written.
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
	data := m.Marshal()
	if max := r.maxSize(); int64(len(data)) > max {
		// Its receiver would set it aside unread.
		return "", fmt.Errorf("deliver %s: %w", m.ID, &ParseError{
			Msg:  fmt.Sprintf("the message is %d bytes, over the limit of %s (max_message_size in parley.toml)", len(data), Size(max)),
			Hint: "shorten the text, or raise max_message_size in parley.toml"})
	}
	where, err := r.transport().Put(m, data, r.Now())
	if err != nil {
		return "", err
	}
	e := MessageEntry(actor, EventDelivered, m)
	e.File = where
	if err := r.record(e); err != nil {
		return where, fmt.Errorf("deliver %s: %w", m.ID, err)
	}
	return where, nil
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
	Name    string // its name in cur/, in a Maildir
	Data    []byte // as it was read
	Where   string // where it is while claimed, for the ledger
	Message *Message
	// Handle is the transport's own hold on the claim.
	Handle any

	unread *StrangerError // why Data was not read: the file is not a message file
	inbox  Inbox          // what Finish and SetAside go through
}

// ErrRejected is wrapped by Claim's error for a file that was not a valid
// message: it was moved to rejected/ with a .err, and its sender told.
var ErrRejected = errors.New("rejected")

// Claim takes the message name (a file name in new/, or the path Deliver
// returned) from agent's Maildir, reads it and records the claim. A file
// that is not a valid message is rejected (see Reject) and Claim returns
// an error wrapping ErrRejected; ErrClaimed and ErrBusy are passed on from
// Maildir.Claim.
func (r *Root) Claim(agent, name string) (*Claimed, error) {
	d := r.Inbox(agent)
	c, err := claimFile(agent, d, filepath.Base(name), false)
	if errors.Is(err, ErrClaimed) {
		c, err = r.claimMoved(agent, d, filepath.Base(name))
	}
	if err != nil {
		return nil, err
	}
	c.inbox = &maildirInbox{agent: agent, d: d}
	if err := r.read(c); err != nil {
		return nil, err
	}
	if err := r.record(claimEntry(c)); err != nil {
		return nil, err
	}
	return c, nil
}

// claimMoved claims the file name from cur/, where a mail client moved it
// unclaimed (a person read it); ErrClaimed if it is not waiting there.
func (r *Root) claimMoved(agent string, d Maildir, name string) (*Claimed, error) {
	rec, err := ReadRootRecord(r.Dir)
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", name, err)
	}
	moved, err := d.Waiting(rec)
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", name, err)
	}
	for _, n := range moved {
		if Uniq(n) == Uniq(name) {
			return claimFile(agent, d, n, true)
		}
	}
	return nil, fmt.Errorf("claim %s: %w", name, ErrClaimed)
}

func claimEntry(c *Claimed) Entry {
	e := MessageEntry(c.Agent, EventClaimed, c.Message)
	e.File = c.Where
	return e
}

// read parses a claimed message; one that is not valid is set aside, its
// sender told, and the error wraps ErrRejected.
func (r *Root) read(c *Claimed) error {
	var m *Message
	var err error
	if c.unread != nil {
		err = c.unread
	} else if m, err = Parse(c.Data); err == nil {
		err = m.Validate()
	}
	if err != nil {
		c.Message = m
		if rerr := r.SetAside(c, err); rerr != nil {
			return rerr
		}
		return fmt.Errorf("claim %s: %w: %w", cmp.Or(c.Name, c.Where), ErrRejected, err)
	}
	c.Message = m
	return nil
}

// Claims is an agent's inbox as its runtime uses it, on any transport:
// each claim is read, checked and recorded.
type Claims struct {
	r     *Root
	agent string
	in    Inbox
}

// Claims opens agent's inbox for claiming; the caller closes it.
func (r *Root) Claims(agent string) (*Claims, error) {
	in, err := r.transport().Inbox(agent)
	if err != nil {
		return nil, fmt.Errorf("inbox %s: %w", agent, err)
	}
	return &Claims{r: r, agent: agent, in: in}, nil
}

// Warning says what the user should know about how the inbox is watched.
func (cl *Claims) Warning() string {
	if w, ok := cl.in.(interface{ Warning() string }); ok {
		return w.Warning()
	}
	return ""
}

// Next claims the next message, waiting until ctx ends. A message that is
// not valid is set aside (the error wraps ErrRejected).
func (cl *Claims) Next(ctx context.Context) (*Claimed, error) {
	c, err := cl.in.Next(ctx)
	if err != nil {
		return nil, err
	}
	c.inbox = cl.in
	err = cl.r.read(c)
	if err == nil {
		err = cl.r.record(claimEntry(c))
	}
	if err != nil && !errors.Is(err, ErrRejected) { // a rejected one is set aside already
		cl.in.Release(c)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Take claims the message name from agent's new/ now, as Next would have
// when the watcher reported it: the runtime takes what is waiting before a
// deadline passes, whatever the watcher has seen yet. It is for files only
// (another transport returns an error); ErrClaimed and ErrBusy are passed on.
func (cl *Claims) Take(name string) (*Claimed, error) {
	in, ok := cl.in.(*maildirInbox)
	if !ok {
		return nil, errors.New("only an inbox of files is taken by name")
	}
	c, err := claimFile(in.agent, in.d, name, false)
	if err != nil {
		return nil, err
	}
	c.inbox = cl.in
	err = cl.r.read(c)
	if err == nil {
		err = cl.r.record(claimEntry(c))
	}
	if err != nil && !errors.Is(err, ErrRejected) {
		cl.in.Release(c)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Unfinished returns what was claimed before a stop and never finished, to
// be handled again; what is not valid is set aside, as a claim would have,
// and said in rejected, as is what could not be read now (it stays
// claimed, for the next start).
func (cl *Claims) Unfinished() (claimed []*Claimed, rejected []error, err error) {
	cs, err := cl.in.Unfinished()
	if err != nil {
		// What could be read is handled; the rest waits for the next start.
		rejected = append(rejected, err)
	}
	for _, c := range cs {
		c.inbox = cl.in
		if err := cl.r.read(c); errors.Is(err, ErrRejected) {
			rejected = append(rejected, err)
			continue
		} else if err != nil {
			return nil, nil, err
		}
		claimed = append(claimed, c)
	}
	return claimed, rejected, nil
}

// Close stops watching the inbox.
func (cl *Claims) Close() error { return cl.in.Close() }

// Finish marks a claimed message with flags (FlagDone, FlagAnswered,
// FlagFailed) and records it: done, or failed with the reason.
func (r *Root) Finish(c *Claimed, flags, reason string) error {
	if c.inbox == nil {
		return fmt.Errorf("finish %s: not claimed through Root.Claim or Claims", c.Where)
	}
	where, err := c.inbox.Finish(c, flags, reason)
	if err != nil {
		return err
	}
	event := EventDone
	if strings.Contains(flags, FlagFailed) {
		event = EventFailed
	}
	e := MessageEntry(c.Agent, event, c.Message)
	e.File, e.Reason = where, reason
	return r.record(e)
}

// SetAside takes a claimed message out of its inbox for good, kept with the
// reason where a person can read it (rejected/ and a .err, in a Maildir),
// records it, and tells its sender.
func (r *Root) SetAside(c *Claimed, reason error) error {
	if c.inbox == nil {
		return fmt.Errorf("set aside %s: not claimed through Root.Claim or Claims", c.Where)
	}
	where, err := c.inbox.SetAside(c, r.explain(reason))
	if err != nil {
		return err
	}
	return r.rejected(c.Agent, where, c.Message, reason)
}

// Reject moves the file at path (in agent's inbox or drop folder) to
// rejected/ with a NAME.err that says what is wrong, records it, and sends
// its sender an ERROR when the sender can be known (m may be nil or partly
// read).
func (r *Root) Reject(agent, path string, m *Message, reason error) error {
	where, err := rejectFile(r.Inbox(agent), agent, path, r.explain(reason))
	if err != nil {
		return err
	}
	return r.rejected(agent, where, m, reason)
}

// explain is reason with its hint, as a person reads it beside the file,
// the commands it names written for this root (internal/cmdline).
func (r *Root) explain(reason error) string {
	return cmdline.ForRoot(r.Dir, explain(reason))
}

// explain is reason with its hint, for the default root.
func explain(reason error) string {
	var pe *ParseError
	if errors.As(reason, &pe) && pe.Hint != "" {
		return fmt.Sprintf("%s\nhow to fix it: %s", reason, pe.Hint)
	}
	if errors.Is(reason, ErrStranger) {
		return fmt.Sprintf("%s\nit was not read; a message is a regular file of at most the size limit, such as parley send and parley compose write", reason)
	}
	return reason.Error()
}

// rejected records a message set aside at where and tells its sender.
func (r *Root) rejected(agent, where string, m *Message, reason error) error {
	e := MessageEntry(agent, EventRejected, m)
	e.File, e.Reason = where, reason.Error()
	if err := r.record(e); err != nil {
		return err
	}
	if m == nil || m.From == "" || m.From == agent || !r.Inbox(m.From).Exists() {
		return nil
	}
	notice := r.errorTo(m, "rejected by "+agent+": "+truncate(reason.Error(), 120),
		"Your message to "+agent+" could not be accepted:\n\n  "+r.explain(reason)+"\n\n"+
			"It was moved to "+where+", with the reason beside it.\n")
	if _, err := r.Deliver(System, notice); err != nil {
		return fmt.Errorf("tell %s of rejection: %w", m.From, err)
	}
	return nil
}
