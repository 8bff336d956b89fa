package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// A Transport carries a team's messages and keeps its ledger: the Maildirs
// and ledger.jsonl under a root's folder (the default, Files), or NATS
// JetStream (package mailbox/jsteam) for a team that spans machines. Root
// records every step in the ledger and tells senders what went wrong, on
// either; roles, policy, brains and commands do not know which it is.
type Transport interface {
	// Put stores a message (data is m, signed and written) in the inbox of
	// m.To, durably, before it returns. Put again under the same Message-ID,
	// a transport may store it once. It says where it is, for the ledger.
	Put(m *Message, data []byte, now time.Time) (where string, err error)
	// Inbox opens agent's inbox for claiming.
	Inbox(agent string) (Inbox, error)
	// Journal opens the ledger, with a read position of its own.
	Journal() (Journal, error)
	// Close lets go of what the transport holds.
	Close() error
}

// An Inbox is one agent's inbox, from which only that agent claims.
type Inbox interface {
	// Next claims the next message, waiting until ctx ends for one. No
	// other claim gets it until it is finished or set aside, or the
	// claimer stops without doing either (then it is claimed again).
	Next(ctx context.Context) (*Claimed, error)
	// Unfinished claims again what was claimed before a stop and never
	// finished (a transport that redelivers such messages by itself
	// returns none: Next brings them).
	Unfinished() ([]*Claimed, error)
	// Finish ends a claim, with flags (FlagDone, FlagFailed, FlagAnswered);
	// a failed message is kept for a person, with reason. It says where the
	// message now is.
	Finish(c *Claimed, flags, reason string) (where string, err error)
	// SetAside takes a claimed message out of the inbox for good, kept
	// where a person can read it with why; it says where.
	SetAside(c *Claimed, why string) (where string, err error)
	// Release lets go of a claim that could not be taken up (its claim
	// not recorded): the message is claimed again — at once on a
	// transport that can, or as unfinished at the next start.
	Release(c *Claimed)
	Close() error
}

// A Journal is the ledger as one reader and writer sees it: a file under a
// lock (Ledger) or a JetStream stream. Either keeps one hash chain that
// never forks, whoever appends.
type Journal interface {
	// Append adds entries as consecutive lines and returns them as written.
	Append(entries ...Entry) ([]Entry, error)
	// Transact runs fn with the entries appended since this Journal last
	// read, and appends what fn returns only if no other line came between:
	// a decision made from what the ledger says is recorded before anyone
	// else's line. fn may be run again, with the newer lines.
	Transact(fn func(news []Entry) ([]Entry, error)) ([]Entry, error)
	Close() error
}

// A Bringer is a Transport whose inboxes are not the root's Maildirs: Bring
// moves what waits for agent into its Maildir, for a person to read there
// (the human's inbox, which no process claims), and says how many.
type Bringer interface {
	Bring(agent string, into Maildir, now time.Time) (int, error)
}

// Bring moves what waits for agent on the transport into its Maildir, on a
// transport other than files; on files it is there already.
func (r *Root) Bring(agent string) (int, error) {
	b, ok := r.Transport.(Bringer)
	if !ok {
		return 0, nil
	}
	n, err := b.Bring(agent, r.Inbox(agent), r.Now())
	if err != nil {
		return n, fmt.Errorf("bring %s's inbox in: %w", agent, err)
	}
	return n, nil
}

// Peeked is a message in an inbox on a transport other than files.
type Peeked struct {
	Data  []byte
	State State // new or claimed
	Time  time.Time
	Where string
}

// A Peeker is a Transport whose inboxes are not the root's Maildirs: Peek
// lists what is in agent's inbox, waiting or claimed, claiming nothing.
type Peeker interface {
	Peek(agent string) ([]Peeked, error)
}

// A StateStore keeps each agent's state where every machine of the team
// reads it: on a transport that spans machines, a process that takes an
// agent over (its lease, Beater) goes on from the state the last holder
// saved, not from none. The runtime saves there instead of in
// ROOT/NAME/state/.
type StateStore interface {
	// LoadState is what SaveState last kept for agent; nil when nothing.
	LoadState(agent string) ([]byte, error)
	// SaveState keeps data as agent's state, durably — as durably as the
	// ledger — before it returns.
	SaveState(agent string, data []byte) error
}

// A Beater is a Transport that spans machines: an agent's process holds a
// lease on the agent's name through it, renewed at each beat, so that one
// process runs it team-wide (as its lock file ensures on one machine) and
// parley status on any machine sees it running.
type Beater interface {
	// Hold takes agent's lease for the process b names, unless a process
	// of another root holds it and beat within lapse (a *HeldError). It
	// returns the lease's revision.
	Hold(agent string, b Beat, lapse time.Duration) (rev uint64, err error)
	// Beat renews the lease of revision rev and returns the new one;
	// ErrLost when another process took it over.
	Beat(agent string, b Beat, rev uint64) (uint64, error)
	// Gone gives up the lease of revision rev: the agent stopped.
	Gone(agent string, rev uint64) error
	// Beats are the agents' last beats, by agent, with when each came.
	Beats() (map[string]Beat, error)
}

// ErrLost says another process took an agent's lease over: this one was
// thought dead, and must stop.
var ErrLost = errors.New("another process took the agent over")

// HeldError says a process of another root holds an agent's lease.
type HeldError struct {
	Agent string
	By    Beat
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("agent %s runs in %s (%s)", e.Agent, e.By.Root, e.By.Who)
}

// Beat is an agent's last word that it is alive.
type Beat struct {
	Who  string    `json:"who"`  // the process: pid@host
	Root string    `json:"root"` // where it runs: host:/path/of/the/root
	At   time.Time `json:"-"`
}

// A Keeper is a Transport that keeps every message delivered, finished or
// not, outside the root's folder: Kept returns them by Message-ID, for
// parley ledger verify --messages.
type Keeper interface {
	Kept() (map[string][]byte, error)
}

// Files is the default Transport: a Maildir per agent and ledger.jsonl,
// under the root's folder.
type Files struct {
	Dir string
	Now func() time.Time
	// Max is the largest message file read from an inbox:
	// DefaultMaxMessageSize when 0.
	Max int64
}

// Put delivers into the recipient's Maildir.
func (f Files) Put(m *Message, data []byte, now time.Time) (string, error) {
	name, err := (Maildir{Dir: filepath.Join(f.Dir, m.To)}).Deliver(data, now)
	if name == "" {
		return "", err
	}
	return filepath.Join(m.To, "new", name), err
}

// PutOnce is Put for a message that may be put again (a bridge after a
// crash): one already in the recipient's Maildir is not put twice (dup).
func (f Files) PutOnce(m *Message, data []byte, now time.Time) (where string, dup bool, err error) {
	rel, dup, err := (Maildir{Dir: filepath.Join(f.Dir, m.To)}).DeliverOnce(m.ID, data, now)
	if rel == "" {
		return "", false, err
	}
	return filepath.Join(m.To, rel), dup, err
}

// Journal opens ledger.jsonl, to be verified against the heads it must
// have passed through: its anchors, and the last line each agent verified.
// It starts at the verified position a process kept (ROOT/.parley/
// checkpoint/ledger.pos) when the ledger still matches it.
func (f Files) Journal() (Journal, error) { return f.JournalFrom(ReadPosition(f.Dir)) }

// JournalFrom is Journal starting at a checkpoint's position, when the
// ledger still matches it (OpenLedgerFrom).
func (f Files) JournalFrom(from Position) (Journal, error) {
	l, err := OpenLedgerFrom(filepath.Join(f.Dir, LedgerFile), f.Now, func() ([]Head, error) { return Heads(f.Dir) }, from)
	if err != nil {
		// Not l: a nil *Ledger in a Journal is not a nil Journal, and its
		// Close would dereference it.
		return nil, err
	}
	return l, nil
}

// HeadFile is where, in its state/ folder, an agent keeps the last ledger
// line it verified ("SEQ HASH"): a ledger later found shorter, or with
// another hash there, was cut or rewritten while nobody looked.
const HeadFile = "ledger.head"

// Heads are the heads a root's ledger must have passed through: the
// anchors (ledger.anchors) and each agent's kept head.
func Heads(dir string) ([]Head, error) {
	anchors, err := ReadAnchors(filepath.Join(dir, AnchorFile))
	if err != nil {
		return nil, err
	}
	var heads []Head
	for seq, hash := range anchors {
		heads = append(heads, Head{Seq: seq, Hash: hash, By: "the anchor in " + AnchorFile})
	}
	kept, _ := filepath.Glob(filepath.Join(dir, "*", "state", HeadFile))
	for _, path := range kept {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // a cache: one that cannot be read checks nothing
		}
		var h Head
		if _, err := fmt.Sscanf(string(data), "%d %64s", &h.Seq, &h.Hash); err != nil || len(h.Hash) != 64 {
			continue
		}
		rel, _ := filepath.Rel(dir, path)
		h.By = fmt.Sprintf("%s (%s)", filepath.Base(filepath.Dir(filepath.Dir(path))), rel)
		heads = append(heads, h)
	}
	return heads, nil
}

// KeepHead records h as the last ledger line agent verified, for the next
// process that opens the ledger to check. It is a check, not the truth: a
// crash may lose it, so it is not synced.
func (r *Root) KeepHead(agent string, h Head) error {
	path := r.Inbox(agent).Path("state", HeadFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %s\n", h.Seq, h.Hash), 0o644); err != nil {
		return fmt.Errorf("keep the ledger's head: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("keep the ledger's head: %w", err)
	}
	return nil
}

// Close does nothing: every file is closed by its user.
func (f Files) Close() error { return nil }

// Inbox watches agent's new/ (fsnotify, and a rescan) and claims from it;
// it watches cur/ too, for what a mail client moved there unclaimed.
func (f Files) Inbox(agent string) (Inbox, error) {
	d := Maildir{Dir: filepath.Join(f.Dir, agent), Max: f.Max}
	// What parley claimed before it marked its claims, by the ledger: read
	// before cur/ is, so that no such file is taken for a waiting one.
	rec, err := ReadRootRecord(f.Dir)
	if err != nil {
		return nil, fmt.Errorf("inbox %s: %w", agent, err)
	}
	w, err := Watch(d.Path("new"), WatchOptions{})
	if err != nil {
		return nil, err
	}
	in := &maildirInbox{agent: agent, d: d, w: w, rec: rec}
	in.cur, err = Watch(d.Path("cur"), WatchOptions{Keep: in.unclaimed})
	if err != nil {
		w.Close()
		return nil, err
	}
	return in, nil
}

type maildirInbox struct {
	agent string
	d     Maildir
	w     *Watcher // new/
	cur   *Watcher // cur/: the files a mail client moved there unclaimed
	rec   Record
	queue []string // names reported in new/, not yet tried
	moved []string // names reported in cur/, not yet tried

	mu       sync.Mutex
	held     map[string]bool     // the claims handed out and not ended, by Uniq
	shadowed map[string][]string // files in cur/ seen under a held Uniq
	opened   bool                // Unfinished has run: what is claimed is held
}

// unclaimed reports whether the file name in cur/ waits for the agent: a
// mail client moved it there from new/, or wrote a copy of a claimed file
// under its name (Python's mailbox rewrites a message so: a copy, then the
// original removed) that no claim of this inbox holds. Only the agent's
// own process claims from its inbox (it holds the agent's lock).
func (in *maildirInbox) unclaimed(name string) bool {
	switch in.d.stateOf(name, in.rec) {
	case StateNew:
		return true
	case StateClaimed:
		if !Marked(name) {
			return false // claimed before the mark: Unfinished takes it
		}
		in.mu.Lock()
		defer in.mu.Unlock()
		u := Uniq(name)
		if in.held[u] {
			// Looked at again when the claim ends: a copy, or the
			// claimed file as a mail client renamed it.
			if in.shadowed == nil {
				in.shadowed = map[string][]string{}
			}
			in.shadowed[u] = append(in.shadowed[u], name)
			return false
		}
		return in.opened
	}
	return false
}

func (in *maildirInbox) hold(c *Claimed, on bool) {
	u := Uniq(c.Name)
	in.mu.Lock()
	if on {
		if in.held == nil { // an inbox opened for one claim (Root.Claim)
			in.held = map[string]bool{}
		}
		in.held[u] = true
		in.mu.Unlock()
		return
	}
	delete(in.held, u)
	again := in.shadowed[u]
	delete(in.shadowed, u)
	in.mu.Unlock()
	for _, name := range again {
		in.cur.add(name) // again is empty unless in.cur watched // not under in.mu: the watcher calls unclaimed under its own lock
	}
}

// Warning says the watch polls (a network file system).
func (in *maildirInbox) Warning() string { return in.w.Warning() }

func (in *maildirInbox) Next(ctx context.Context) (*Claimed, error) {
	for {
		for len(in.queue) > 0 {
			name := in.queue[0]
			in.queue = in.queue[1:]
			c, err := claimFile(in.agent, in.d, name, false)
			switch {
			case errors.Is(err, ErrClaimed):
				continue // or a mail client moved it into cur/: found there
			case errors.Is(err, ErrBusy):
				in.w.Again(name, 50*time.Millisecond)
				continue
			}
			if c != nil {
				in.hold(c, true)
			}
			return c, err
		}
		for len(in.moved) > 0 {
			name := in.moved[0]
			in.moved = in.moved[1:]
			if !in.unclaimed(name) {
				continue // claimed since, or held
			}
			c, err := in.claimMoved(name)
			switch {
			case errors.Is(err, ErrClaimed):
				continue // flagged again meanwhile: reported under its new name
			case errors.Is(err, ErrBusy):
				in.cur.Again(name, 50*time.Millisecond)
				continue
			}
			if c != nil {
				in.hold(c, true)
			}
			return c, err
		}
		names, ok, err := in.w.take()
		if !ok {
			names, ok, err = in.cur.take()
			if ok && err == nil {
				in.moved = names
				continue
			}
		} else if err == nil {
			in.queue = names
			continue
		}
		if ok {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-in.w.stop:
			return nil, errors.New("watcher closed")
		case <-in.w.ready:
		case <-in.cur.ready:
		}
	}
}

// claimMoved claims a file a mail client left in cur/: one it moved from
// new/ keeps its name; a copy it wrote of a claimed one gets a unique
// name of its own, as a delivery has, so that it never takes the
// original's place.
func (in *maildirInbox) claimMoved(name string) (*Claimed, error) {
	if !Marked(name) {
		return claimFile(in.agent, in.d, name, true)
	}
	_, _, flags := splitName(name)
	claimed := markedName(Uniq(NewFileName(time.Now())), markClaimed, flags)
	if err := renameFile(in.d.Path("cur", name), in.d.Path("cur", claimed)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("claim %s: %w", name, ErrClaimed)
		}
		return nil, fmt.Errorf("claim %s: %w", name, err)
	}
	return readClaimed(in.agent, in.d, claimed)
}

// claimFile claims name from d's new/ (or, moved, from cur/) and reads it.
func claimFile(agent string, d Maildir, name string, moved bool) (*Claimed, error) {
	claim := d.Claim
	if moved {
		claim = d.ClaimCur
	}
	claimed, err := claim(name)
	if err != nil {
		return nil, err
	}
	return readClaimed(agent, d, claimed)
}

// readClaimed reads the file claimed into cur/. A file that is not a
// message file (a link, a pipe, a folder, one over the size limit) is
// claimed all the same, unread, for Root to set aside.
func readClaimed(agent string, d Maildir, claimed string) (*Claimed, error) {
	c := &Claimed{Agent: agent, Name: claimed, Where: filepath.Join(agent, "cur", claimed)}
	data, err := d.Read(d.Path("cur", claimed))
	var stranger *StrangerError
	switch {
	case errors.As(err, &stranger):
		c.unread = stranger
	case err != nil:
		return nil, fmt.Errorf("claim %s: %w", claimed, err)
	}
	c.Data = data
	return c, nil
}

func (in *maildirInbox) Unfinished() ([]*Claimed, error) {
	names, err := in.d.Unfinished(in.rec)
	if err != nil {
		return nil, err
	}
	var out []*Claimed
	var errs []error
	for _, n := range names {
		c, err := readClaimed(in.agent, in.d, n)
		if err != nil {
			// Left in cur/, unfinished, for the next start: one file that
			// cannot be read now must not keep the agent from the others.
			errs = append(errs, fmt.Errorf("claimed before a stop: %w", err))
			continue
		}
		out = append(out, c)
	}
	in.mu.Lock()
	if in.held == nil {
		in.held = map[string]bool{}
	}
	for _, c := range out {
		in.held[Uniq(c.Name)] = true
	}
	in.opened = true
	in.mu.Unlock()
	return out, errors.Join(errs...)
}

// Finish renames the file in cur/ with its flags; the ledger keeps the
// reason.
func (in *maildirInbox) Finish(c *Claimed, flags, _ string) (string, error) {
	name, err := in.d.Finish(c.Name, flags)
	if errors.Is(err, ErrVanished) {
		// Handled, and its file taken by another program: nothing to
		// mark, and nothing for the agent to stop for.
		in.hold(c, false)
		return filepath.Join(c.Agent, "cur", c.Name), nil
	}
	if err != nil {
		return "", err
	}
	in.hold(c, false)
	return filepath.Join(c.Agent, "cur", name), nil
}

func (in *maildirInbox) SetAside(c *Claimed, why string) (string, error) {
	where, err := rejectFile(in.d, c.Agent, in.d.Path("cur", c.Name), why)
	if err == nil {
		in.hold(c, false)
	}
	return where, err
}

// rejectFile moves the file at path into d's rejected/, with why beside
// it, and says where it went, relative to the root.
func rejectFile(d Maildir, agent, path, why string) (string, error) {
	dst, err := d.Reject(path, fmt.Sprintf("%s: %s", filepath.Base(path), why))
	if err != nil {
		return "", err
	}
	return filepath.Join(agent, "rejected", filepath.Base(dst)), nil
}

// Release puts the file back into new/, where the watcher finds it again;
// if it cannot, the file stays in cur/, unfinished, for the next start.
func (in *maildirInbox) Release(c *Claimed) {
	if in.d.Unclaim(c.Name) == nil {
		in.hold(c, false)
	}
}

func (in *maildirInbox) Close() error {
	err := in.w.Close()
	if in.cur != nil {
		err = errors.Join(err, in.cur.Close())
	}
	return err
}
