package mailbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Maildir flags parley sets on a message in cur/ (the Maildir spec's
// letters, so mutt and Python's mailbox read them as seen, flagged, replied).
const (
	FlagDone     = "S" // handled
	FlagFailed   = "F" // given up on: needs a person
	FlagAnswered = "R" // a reply was sent
)

// info is the Maildir suffix of a claimed file; flags follow it.
const info = ":2,"

var (
	// ErrVanished is returned by Finish for a claimed file that another
	// program took away (a mail client's copy may come back later; its
	// agent finds it handled then). The message was handled all the same.
	ErrVanished = errors.New("the claimed file is gone: another program moved it")
	// ErrClaimed is returned by Claim when another process claimed the
	// message first (or it is gone): the caller lost a race, which is fine.
	ErrClaimed = errors.New("already claimed")
	// ErrBusy is returned by Claim for a file that a process still has open
	// for writing (a tool that wrote straight into new/): try again later.
	ErrBusy = errors.New("still being written")
)

// Maildir is one agent's inbox: tmp/, new/ and cur/ as the Maildir spec has
// them, plus rejected/ for files that could not be accepted, drop/ for
// hand-written files and state/ for the agent's own state.
type Maildir struct {
	Dir string
	// Max is the largest message file read from the inbox, in bytes:
	// DefaultMaxMessageSize when 0. A larger file is set aside unread.
	Max int64
}

// Subdirectories of an inbox.
var subdirs = []string{"tmp", "new", "cur", "rejected", "drop", "state"}

// Create makes the inbox's folders; it keeps any that exist.
func (d Maildir) Create() error {
	for _, s := range subdirs {
		if err := os.MkdirAll(filepath.Join(d.Dir, s), 0o755); err != nil {
			return fmt.Errorf("create inbox %s: %w", d.Dir, err)
		}
	}
	return nil
}

// Read reads a message file of the inbox (see ReadMessageFile): only a
// regular file, only up to d.Max.
func (d Maildir) Read(path string) ([]byte, error) { return ReadMessageFile(path, d.Max) }

// Exists reports whether d is an inbox.
func (d Maildir) Exists() bool {
	st, err := os.Stat(filepath.Join(d.Dir, "new"))
	return err == nil && st.IsDir()
}

// Path joins parts under the inbox.
func (d Maildir) Path(parts ...string) string {
	return filepath.Join(append([]string{d.Dir}, parts...)...)
}

// Deliver writes data into the inbox as qmail does: a unique file in tmp/,
// synced and closed, renamed into new/, and new/ synced. Only then is the
// message delivered; on any failure before the rename the temporary file is
// removed and nothing is delivered. A failed fsync is not retried: the
// kernel may have dropped the dirty pages already (PostgreSQL's fsyncgate).
func (d Maildir) Deliver(data []byte, now time.Time) (string, error) {
	name := NewFileName(now)
	tmp := d.Path("tmp", name)
	f, err := openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("deliver into %s: %w", d.Dir, err)
	}
	fail := func(step string, err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("deliver into %s: %s: %w", d.Dir, step, err)
	}
	if _, err := writeFile(f, data); err != nil {
		return fail("write", err)
	}
	if err := syncFile(f); err != nil {
		return fail("sync", err)
	}
	// Close, then rename: Windows refuses the reverse, and a closed file is
	// one no reader can see half-written.
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("deliver into %s: close: %w", d.Dir, err)
	}
	if err := renameFile(tmp, d.Path("new", name)); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("deliver into %s: rename: %w", d.Dir, err)
	}
	// From here the message is visible: a failure leaves it delivered but
	// perhaps not durable, and the caller is told so; receivers are
	// idempotent by Message-ID, so a retry cannot do anything twice.
	if err := syncDir(d.Path("new")); err != nil {
		return name, fmt.Errorf("deliver into %s: sync new/: %w", d.Dir, err)
	}
	return name, nil
}

// DeliverOnce is Deliver for a message that may be put again after a
// crash (a bridge's crossing): its file is named from its Message-ID, so
// one already in the inbox — new, claimed, archived or set aside — is found
// and not delivered again (dup). A different message under the same id is
// delivered under a name of its own, for its agent to refuse. It returns
// the file's path relative to d.
func (d Maildir) DeliverOnce(id string, data []byte, now time.Time) (name string, dup bool, err error) {
	sum := sha256.Sum256([]byte(id))
	name = "once." + hex.EncodeToString(sum[:20])
	for _, dir := range []Maildir{d, d.Archive()} {
		for _, sub := range []string{"new", "cur", "rejected"} {
			found, err := filepath.Glob(filepath.Join(dir.Path(sub), name+"*"))
			if err != nil {
				return "", false, fmt.Errorf("deliver into %s: %w", d.Dir, err)
			}
			for _, f := range found {
				if strings.HasSuffix(f, ".err") {
					continue
				}
				old, err := os.ReadFile(f)
				if err != nil {
					continue // claimed and moved on since the listing: looked for again below
				}
				if !bytes.Equal(old, data) {
					name, err := d.Deliver(data, now)
					if name != "" {
						name = filepath.Join("new", name)
					}
					return name, false, err
				}
				rel, _ := filepath.Rel(d.Dir, f)
				return rel, true, nil
			}
		}
	}
	tmp := d.Path("tmp", name)
	if err := WriteDurable(tmp, data); err != nil {
		return "", false, fmt.Errorf("deliver into %s: %w", d.Dir, err)
	}
	if err := renameFile(tmp, d.Path("new", name)); err != nil {
		os.Remove(tmp)
		return "", false, fmt.Errorf("deliver into %s: rename: %w", d.Dir, err)
	}
	if err := syncDir(d.Path("new")); err != nil {
		return filepath.Join("new", name), false, fmt.Errorf("deliver into %s: sync new/: %w", d.Dir, err)
	}
	return filepath.Join("new", name), false, nil
}

// WriteDurable writes a file so that it is whole or absent after a crash:
// a temporary file, fsync, rename, and the folder synced.
func WriteDurable(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := writeFile(f, data); err != nil {
		return fail(err)
	}
	if err := syncFile(f); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := renameFile(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// baseName strips a Maildir info suffix.
func baseName(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

// markField opens parley's own mark on a file it claimed: a field in the
// unique part of the name, where Dovecot keeps its ",S=size". Mail clients
// (mutt and neomutt, notmuch with synchronize_flags, Python's mailbox)
// move a file from new/ to cur/ and rewrite what follows ":2,", but keep
// the unique part as it is, and none writes this field (RELIABILITY.md
// 12). So a client's flags never make a message claimed or done: only
// parley's mark does, and the ledger records each.
const markField = ",parley="

// The marks, one for each state a claimed file can be in.
const (
	markClaimed  = "claimed"
	markDone     = "done"
	markAnswered = "answered"
	markFailed   = "failed"
)

// splitName parts a file name into its unique part (without parley's
// mark), the mark ("" for none) and the flags after ":2,".
func splitName(name string) (uniq, mark, flags string) {
	uniq = baseName(name)
	if i := strings.Index(name, info); i >= 0 {
		flags = name[i+len(info):]
	}
	if i := strings.Index(uniq, markField); i >= 0 {
		uniq, mark = uniq[:i], uniq[i+len(markField):]
	}
	return uniq, mark, flags
}

// Uniq is the unique part of a message file's name: what stays the same
// whoever moves or flags it.
func Uniq(name string) string {
	u, _, _ := splitName(name)
	return u
}

// Marked reports whether parley has claimed the file name (in cur/).
func Marked(name string) bool { return strings.Contains(baseName(name), markField) }

func markedName(uniq, mark, flags string) string {
	return uniq + markField + mark + info + sortFlags(flags)
}

// Claim takes the message name out of new/ into cur/ with one rename,
// marked as parley's claim, so that of any number of processes claiming it
// exactly one wins; the others get ErrClaimed. A file still open for
// writing (put into new/ by a tool that skipped tmp/) is not taken: Claim
// returns ErrBusy.
func (d Maildir) Claim(name string) (string, error) {
	return d.claim("new", name)
}

// ClaimCur claims the file name that a mail client moved into cur/ before
// parley claimed it (a person read it, or marked it seen): it is still
// waiting for its agent. The client's flags are kept.
func (d Maildir) ClaimCur(name string) (string, error) {
	if Marked(name) {
		return "", fmt.Errorf("claim %s: %w", name, ErrClaimed)
	}
	return d.claim("cur", name)
}

func (d Maildir) claim(sub, name string) (string, error) {
	src := d.Path(sub, name)
	st, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("claim %s: %w", name, ErrClaimed)
	}
	if err != nil {
		return "", fmt.Errorf("claim %s: %w", name, err)
	}
	// A file that is not a regular one (a link, a pipe, a folder) is
	// claimed like any other, and its reading refuses it: claimed, it is
	// set aside once, not found again at every start.
	if st.Mode().IsRegular() {
		busy, err := beingWritten(src)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("claim %s: %w", name, ErrClaimed)
		}
		if err != nil && describe(src) == nil {
			return "", fmt.Errorf("claim %s: %w", name, err)
		}
		if busy {
			return "", fmt.Errorf("claim %s: %w", name, ErrBusy)
		}
	}
	uniq, _, flags := splitName(name)
	claimed := markedName(uniq, markClaimed, flags)
	if err := renameFile(src, d.Path("cur", claimed)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("claim %s: %w", name, ErrClaimed)
		}
		return "", fmt.Errorf("claim %s: %w", name, err)
	}
	return claimed, nil
}

// find is the name the file claimed has now in cur/: a mail client may
// have changed its flags since (the unique part and parley's mark stay).
func (d Maildir) find(claimed string) (string, bool) {
	if _, err := os.Lstat(d.Path("cur", claimed)); err == nil {
		return claimed, true
	}
	names, err := listNames(d.Path("cur"))
	if err != nil {
		return "", false
	}
	want := baseName(claimed)
	for _, n := range names {
		if baseName(n) == want {
			return n, true
		}
	}
	return "", false
}

// Locate finds the message file a ledger line names (NAME in new/ or
// cur/, as it was then) where it is now: still in new/, or in cur/ under
// any mark and flags since, or so in the inbox's archive, where a person
// moved it; "" if it is in none of them.
func (d Maildir) Locate(name string) string {
	uniq := Uniq(name)
	for _, dir := range []Maildir{d, d.Archive()} {
		if p := dir.Path("new", uniq); exists(p) {
			return p
		}
		// Marked first: a client's copy of a claimed file has no mark.
		for _, pat := range []string{uniq + markField + "*", uniq + info + "*"} {
			if matches, _ := filepath.Glob(dir.Path("cur", globEscape(pat))); len(matches) > 0 {
				return matches[0]
			}
		}
	}
	return ""
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// globEscape escapes the glob's own characters in a name, but for a final *.
func globEscape(pat string) string {
	body, star := strings.CutSuffix(pat, "*")
	r := strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`)
	body = r.Replace(body)
	if star {
		body += "*"
	}
	return body
}

// Unclaim puts a claimed message (as Claim named it) back into new/, to be
// claimed again.
func (d Maildir) Unclaim(claimed string) error {
	now, ok := d.find(claimed)
	if !ok {
		now = claimed
	}
	if err := renameFile(d.Path("cur", now), d.Path("new", Uniq(claimed))); err != nil {
		return fmt.Errorf("unclaim %s: %w", claimed, err)
	}
	return nil
}

// Finish marks a claimed message (as Claim named it) done, answered or
// failed, as flags say (FlagDone, FlagAnswered, FlagFailed): parley's mark
// says which, and the flags, added to any a mail client set, show it in
// the client. It returns the message's new name in cur/.
func (d Maildir) Finish(claimed, flags string) (string, error) {
	uniq, _, _ := splitName(claimed)
	mark := markDone
	switch {
	case strings.Contains(flags, FlagFailed):
		mark = markFailed
	case strings.Contains(flags, FlagAnswered):
		mark = markAnswered
	}
	now, ok := d.find(claimed)
	// A mail client rewriting the file (Python's mailbox removes it, then
	// renames its new copy into place) leaves a moment when it is nowhere:
	// look again, a little, before saying so.
	for try := 0; !ok && try < 20; try++ {
		time.Sleep(10 * time.Millisecond)
		now, ok = d.find(claimed)
	}
	if !ok {
		// Finished so already, by a try whose record failed (a full
		// disk): finishing again is finishing.
		if done, ok := d.find(uniq + markField + mark + info); ok {
			return done, nil
		}
		return "", fmt.Errorf("finish %s: %w", claimed, ErrVanished)
	}
	_, _, had := splitName(now)
	done := markedName(uniq, mark, mergeFlags(had, flags))
	if err := renameFile(d.Path("cur", now), d.Path("cur", done)); err != nil {
		if _, serr := os.Lstat(d.Path("cur", done)); errors.Is(err, fs.ErrNotExist) && serr == nil {
			return done, nil
		}
		return "", fmt.Errorf("finish %s: %w", claimed, err)
	}
	return done, nil
}

// mergeFlags is the union of two Maildir flag sets.
func mergeFlags(a, b string) string {
	var out []byte
	for _, c := range []byte(a + b) {
		if !strings.ContainsRune(string(out), rune(c)) {
			out = append(out, c)
		}
	}
	return string(out)
}

func sortFlags(flags string) string {
	b := []byte(flags)
	sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
	return string(b)
}

// Pending lists the names waiting in new/, oldest name first, leaving out
// what is not a message (dot files, editors' swap and backup files). A
// file that is not a regular one is listed: claimed, it is set aside.
func (d Maildir) Pending() ([]string, error) {
	return listNames(d.Path("new"))
}

// Unfinished lists the messages claimed into cur/ but not yet finished: on
// restart, an agent handles them again (Postfix's active queue does this).
// A file parley claimed before it marked its claims is unfinished when rec
// (the ledger) says it was claimed and not finished.
func (d Maildir) Unfinished(rec Record) ([]string, error) {
	names, err := listNames(d.Path("cur"))
	if err != nil {
		return nil, err
	}
	out := names[:0]
	for _, n := range names {
		if d.stateOf(n, rec) == StateClaimed {
			out = append(out, n)
		}
	}
	return out, nil
}

// Waiting lists the names in cur/ that a mail client moved there before
// parley claimed them (rec says which unmarked files parley handled
// before it marked its claims): they wait for their agent as those in
// new/ do.
func (d Maildir) Waiting(rec Record) ([]string, error) {
	names, err := listNames(d.Path("cur"))
	if err != nil {
		return nil, err
	}
	out := names[:0]
	for _, n := range names {
		if d.stateOf(n, rec) == StateNew {
			out = append(out, n)
		}
	}
	return out, nil
}

func listNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !Ignored(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// sedTemp is GNU sed -i's temporary file, renamed over the target when done.
var sedTemp = regexp.MustCompile(`^sed[A-Za-z0-9]{6}$`)

// Ignored reports whether a file name in new/ or drop/ is one to pass over:
// dot files (mutt's and editors' locks and temporaries), backups (name~),
// vim's swap files and its write probe 4913, emacs autosaves (#name#),
// *.tmp, and sed -i's temporary file.
func Ignored(name string) bool {
	switch {
	case name == "" || name[0] == '.' || name == "4913":
		return true
	case strings.HasSuffix(name, "~"), strings.HasSuffix(name, ".tmp"),
		strings.HasSuffix(name, ".swp"), strings.HasSuffix(name, ".swo"), strings.HasSuffix(name, ".swx"):
		return true
	case strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#"):
		return true
	}
	return sedTemp.MatchString(name)
}

// State is where a message is in an inbox.
type State string

// The states of a message in an inbox, from its file's folder and flags.
const (
	StateNew      State = "new"
	StateClaimed  State = "claimed"
	StateDone     State = "done"
	StateAnswered State = "answered"
	StateFailed   State = "failed"
)

// stateOf is the state of the file name in cur/: parley's mark says it,
// whatever flags a mail client set. A file without the mark is one a mail
// client moved there, still waiting, unless rec says parley claimed it
// before it marked its claims.
func (d Maildir) stateOf(name string, rec Record) State {
	uniq, mark, _ := splitName(name)
	switch mark {
	case markClaimed:
		return StateClaimed
	case markDone:
		return StateDone
	case markAnswered:
		return StateAnswered
	case markFailed:
		return StateFailed
	}
	if st, ok := rec[filepath.Base(d.Dir)+"/"+uniq]; ok {
		return st
	}
	return StateNew
}

// Record is what the ledger says parley did with the files in cur/ it
// claimed before it marked its claims (roots made by earlier versions),
// by "AGENT/UNIQ": claimed, or finished. Marked files need no record.
type Record map[string]State

// Add takes in one ledger entry.
func (rec Record) Add(e Entry) {
	var st State
	switch e.Event {
	case EventClaimed:
		st = StateClaimed
	case EventDone:
		st = StateDone
	case EventFailed:
		st = StateFailed
	default:
		return
	}
	agent, rest, ok := strings.Cut(e.File, "/cur/")
	if !ok || strings.Contains(agent, "/") || Marked(rest) {
		return
	}
	uniq, _, flags := splitName(rest)
	if st == StateDone && strings.Contains(flags, FlagAnswered) {
		st = StateAnswered
	}
	if old := rec[agent+"/"+uniq]; st == StateClaimed && old != "" {
		return // finished already: a claim's line may come after
	}
	rec[agent+"/"+uniq] = st
}

// recordKeep passes the lines a Record may take in, by their bytes: those
// about a file in cur/ without parley's mark.
func recordKeep(line []byte) bool {
	return bytes.Contains(line, []byte("/cur/")) && !bytes.Contains(line, []byte(markField))
}

// ReadRecord reads the Record of the ledger at path (a missing ledger has
// none); a torn last line is left out.
func ReadRecord(path string) (Record, error) {
	rec := Record{}
	f, err := OpenLedgerReader(path)
	if errors.Is(err, fs.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	err = ReadSomeEntries(f, recordKeep, func(_ int, e Entry) error { rec.Add(e); return nil })
	if errors.Is(err, ErrTornTail) {
		err = nil
	}
	return rec, err
}

// Item is one message file in an inbox.
type Item struct {
	Name  string // the file name in its folder
	Path  string
	State State
	MTime time.Time
}

// List returns every message of the inbox, waiting and claimed, in name
// order (which is arrival order for Maildir names). Its state is parley's
// (see Record), never a mail client's flag.
func (d Maildir) List(rec Record) ([]Item, error) {
	var items []Item
	for _, sub := range []string{"new", "cur"} {
		names, err := listNames(d.Path(sub))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			it := Item{Name: n, Path: d.Path(sub, n), State: StateNew}
			if sub == "cur" {
				it.State = d.stateOf(n, rec)
			}
			if st, err := os.Lstat(it.Path); err == nil {
				it.MTime = st.ModTime()
			}
			items = append(items, it)
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return Uniq(items[i].Name) < Uniq(items[j].Name) })
	return items, nil
}

// IDs are the Message-IDs of the messages in new/ and cur/, each with its
// file's path in the inbox (new/NAME or cur/NAME); a file that is not a
// message has none.
func (d Maildir) IDs() (map[string]string, error) {
	ids := map[string]string{}
	for _, sub := range []string{"new", "cur"} {
		names, err := listNames(d.Path(sub))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			data, err := d.Read(d.Path(sub, n))
			if err != nil {
				continue // claimed and moved on since the listing, or not a message file
			}
			if m, err := Parse(data); err == nil && m.ID != "" {
				ids[m.ID] = filepath.Join(sub, n)
			}
		}
	}
	return ids, nil
}

// Reject moves the file at src into rejected/ (never deleting it) and writes
// NAME.err beside it saying what is wrong and how to fix it. It returns the
// path the file now has.
func (d Maildir) Reject(src, reason string) (string, error) {
	name := Uniq(filepath.Base(src))
	dst := d.Path("rejected", name)
	if _, err := os.Lstat(dst); err == nil {
		name = name + "." + NewFileName(time.Now())
		dst = d.Path("rejected", name)
	}
	// A rename moves a link itself, never what it points to.
	if err := renameFile(src, dst); err != nil {
		return "", fmt.Errorf("reject %s: %w", src, err)
	}
	if err := writeFileSync(dst+".err", []byte(strings.TrimRight(reason, "\n")+"\n")); err != nil {
		return dst, fmt.Errorf("reject %s: write reason: %w", src, err)
	}
	return dst, nil
}
