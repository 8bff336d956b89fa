package mailbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Fill completes a message a person wrote: the protocol version, a Date, a
// Message-ID (from idSeed when given, so that the same file taken in twice
// carries the same id and is handled once), and a Thread — the thread of
// the message it answers when the ledger knows it, else a new one.
func (r *Root) Fill(m *Message, idSeed []byte) error {
	now := r.Now()
	if m.Version == "" {
		m.Version = Version
	}
	if m.Date.IsZero() {
		m.Date = now
	}
	if m.ID == "" && m.From != "" {
		if idSeed != nil {
			sum := sha256.Sum256(idSeed)
			m.ID = "<drop." + hex.EncodeToString(sum[:12]) + "." + m.From + "@parley>"
		} else {
			m.ID = NewMessageID(now, m.From)
		}
	}
	if m.Thread == "" && m.InReplyTo != "" {
		t, err := r.ThreadOf(m.InReplyTo)
		if err != nil {
			return err
		}
		m.Thread = t
	}
	if m.Thread == "" {
		about := m.Item
		if about == "" {
			about = string(m.Verb)
		}
		m.Thread = NewThreadID(now, about)
	}
	return nil
}

// ThreadOf finds the thread of a message id in the ledger, or "".
func (r *Root) ThreadOf(msgID string) (string, error) {
	path, err := r.LedgerPath()
	if err != nil {
		return "", fmt.Errorf("find thread of %s: %w", msgID, err)
	}
	f, err := OpenLedgerReader(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find thread of %s: %w", msgID, err)
	}
	defer f.Close()
	thread := ""
	err = ReadEntries(f, func(_ int, e Entry) error {
		if e.MsgID == msgID && e.Thread != "" {
			thread = e.Thread
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrTornTail) {
		return "", fmt.Errorf("find thread of %s: %w", msgID, err)
	}
	return thread, nil
}

// Intake takes in the files that people save into an agent's drop folder
// (ROOT/NAME/drop/) from any editor. A file is taken once it is complete:
// no process has it open for writing and it has been left alone for Settle.
// It is then read, completed (Fill), validated and delivered into the
// agent's new/ atomically, and the original moves to drop/done/; a file that
// is not a valid message moves to rejected/ with a .err beside it. Editors'
// swap, backup and probe files are passed over.
type Intake struct {
	Root   *Root
	Agent  string        // whose drop folder; what it takes in goes to this inbox
	Human  string        // the sender of a file with no From
	Settle time.Duration // default 500ms
	// Taken is told of each file taken in or rejected (err != nil).
	Taken func(file string, m *Message, err error)
	// Send delivers a message taken in; by default Root.Deliver. Agents set
	// it to go through the policy: a message it refuses is rejected, with
	// the policy's reason beside the file.
	Send func(m *Message) error
}

// Run takes in files until ctx ends.
func (in *Intake) Run(ctx context.Context) error {
	if in.Settle <= 0 {
		in.Settle = 500 * time.Millisecond
	}
	dir := in.Root.Inbox(in.Agent).Path("drop")
	if err := os.MkdirAll(filepath.Join(dir, "done"), 0o755); err != nil {
		return fmt.Errorf("drop folder of %s: %w", in.Agent, err)
	}
	w, err := Watch(dir, WatchOptions{})
	if err != nil {
		return err
	}
	defer w.Close()
	return w.Each(ctx, func(name string) {
		if wait := in.consider(filepath.Join(dir, name)); wait > 0 {
			w.Again(name, wait)
		}
	})
}

// consider takes in the file at path if it is ready, and otherwise says how
// long to wait before looking again.
func (in *Intake) consider(path string) time.Duration {
	st, err := os.Lstat(path)
	if err != nil {
		return 0 // gone (an editor's rename)
	}
	if !st.Mode().IsRegular() {
		if st.IsDir() && filepath.Base(path) == "done" {
			return 0
		}
		// A link, a pipe, a folder: nothing to wait for, never read.
		m, err := in.refuse(path, nil, &StrangerError{What: kindOf(st.Mode(), path), Why: onlyRegular})
		if in.Taken != nil {
			in.Taken(path, m, err)
		}
		return 0
	}
	busy, err := beingWritten(path)
	if err != nil {
		return 0
	}
	if busy {
		return in.Settle
	}
	if age := time.Since(st.ModTime()); age < in.Settle { // file times are the real clock
		return in.Settle - age
	}
	m, err := in.Accept(path)
	if in.Taken != nil {
		in.Taken(path, m, err)
	}
	return 0
}

// Accept takes in one file from the drop folder now. Only a regular file
// within the size limit is read (ReadMessageFile); anything else is
// rejected, unread.
func (in *Intake) Accept(path string) (*Message, error) {
	data, err := ReadMessageFile(path, in.Root.MaxMessageSize)
	if errors.Is(err, ErrStranger) {
		return in.refuse(path, nil, err)
	}
	if err != nil {
		return nil, fmt.Errorf("take in %s: %w", path, err)
	}
	done := filepath.Join(filepath.Dir(path), "done", filepath.Base(path))
	if note, err := os.ReadFile(done + SentSuffix); err == nil {
		// Saved again after it was taken in (vim's second :w): one file
		// name sends at most one message.
		m, _ := Parse(data)
		return in.refuse(path, m, &ParseError{
			Msg: fmt.Sprintf("%s was sent already, and a file saved again is not sent again: %s", filepath.Base(path), strings.TrimSpace(string(note))),
			Hint: fmt.Sprintf("the version that went is %s; to send another message, save it under a new name",
				filepath.Join(in.Agent, "drop", "done", filepath.Base(path)))})
	}
	m, err := in.check(path, data)
	if err != nil {
		return in.refuse(path, m, err)
	}
	send := in.Send
	if send == nil {
		send = func(m *Message) error { _, err := in.Root.Deliver(m.From, m); return err }
	}
	if err := send(m); err != nil {
		return in.refuse(path, m, err)
	}
	// Delivered first, then moved: a crash between the two takes the file
	// in again, with the same Message-ID, and the receiver handles it once.
	if _, err := os.Lstat(done); err == nil {
		done += "." + NewFileName(in.Root.Now()) // taken in before the .sent notes
	}
	if err := renameFile(path, done); err != nil {
		return m, fmt.Errorf("take in %s: %w", path, err)
	}
	// The note says which version went, and keeps a later save of the
	// same name from going too.
	note := fmt.Sprintf("sent as %s (%s from %s to %s) at %s\n", m.ID, m.Verb, m.From, m.To, in.Root.Now().UTC().Format(time.RFC3339))
	if err := writeFileSync(done+SentSuffix, []byte(note)); err != nil {
		return m, fmt.Errorf("take in %s: %w", path, err)
	}
	return m, nil
}

// SentSuffix names the note beside a file taken in from a drop folder
// (drop/done/NAME.sent): the Message-ID it went as, and when.
const SentSuffix = ".sent"

// refuse moves the file at path to rejected/ with why, and records it.
func (in *Intake) refuse(path string, m *Message, why error) (*Message, error) {
	if err := in.Root.Reject(in.Agent, path, m, why); err != nil {
		return m, err
	}
	return m, why
}

func (in *Intake) check(path string, data []byte) (*Message, error) {
	m, err := Parse(data)
	if m == nil {
		return nil, err
	}
	if m.To == "" {
		m.To = in.Agent
	}
	if m.From == "" {
		m.From = in.Human // so that a person whose file is refused is told
	}
	if err != nil {
		return m, err
	}
	if _, signed := m.Get(SignatureHeader); signed {
		// A signed file must verify, whatever it says.
		ring, err := in.Root.Keys()
		if err != nil {
			return m, err
		}
		if err := ring.Verify(m); err != nil {
			return m, err
		}
	} else {
		switch {
		case isMoneyVerb(m.Verb):
			return m, &ParseError{Header: "Verb", Msg: fmt.Sprintf("%s moves money, and a file saved by hand is not signed", m.Verb),
				Hint: "send it with parley send FILE, or answer with parley approve THREAD: both sign it with your key"}
		case m.From != in.Human:
			return m, &ParseError{Header: "From", Msg: fmt.Sprintf("is %s, and a file saved by hand, unsigned, can only come from %s", m.From, in.Human),
				Hint: "leave From out, or send the file with parley send, which signs it with the sender's key"}
		}
	}
	if m.To != in.Agent {
		return m, &ParseError{Header: "To", Msg: fmt.Sprintf("is %s, but this drop folder delivers to %s", m.To, in.Agent),
			Hint: fmt.Sprintf("save the file in %s instead", filepath.Join(in.Root.Dir, m.To, "drop"))}
	}
	st, err := os.Lstat(path)
	if err != nil {
		return m, err
	}
	seed := fmt.Appendf(nil, "%s\x00%d\x00", filepath.Base(path), st.ModTime().UnixNano())
	if err := in.Root.Fill(m, append(seed, data...)); err != nil {
		return m, err
	}
	return m, m.Validate()
}

// isMoneyVerb reports whether v commits money: never on an unsigned word.
func isMoneyVerb(v Verb) bool { return v == Approved || v == Order || v == Paid }
