package mailbox

import (
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

// Claim takes the message name out of new/ into cur/ with one rename, so
// that of any number of processes claiming it exactly one wins; the others
// get ErrClaimed. A file still open for writing (put into new/ by a tool
// that skipped tmp/) is not taken: Claim returns ErrBusy.
func (d Maildir) Claim(name string) (string, error) {
	src := d.Path("new", name)
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
	claimed := baseName(name) + info
	if err := renameFile(src, d.Path("cur", claimed)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("claim %s: %w", name, ErrClaimed)
		}
		return "", fmt.Errorf("claim %s: %w", name, err)
	}
	return claimed, nil
}

// Unclaim puts a claimed message (as Claim named it) back into new/, to be
// claimed again.
func (d Maildir) Unclaim(claimed string) error {
	if err := renameFile(d.Path("cur", claimed), d.Path("new", baseName(claimed))); err != nil {
		return fmt.Errorf("unclaim %s: %w", claimed, err)
	}
	return nil
}

// Finish marks a claimed message (as Claim named it) with flags, such as
// FlagDone or FlagFailed, and returns its new name in cur/.
func (d Maildir) Finish(claimed, flags string) (string, error) {
	done := baseName(claimed) + info + sortFlags(flags)
	if err := renameFile(d.Path("cur", claimed), d.Path("cur", done)); err != nil {
		if _, serr := os.Lstat(d.Path("cur", done)); errors.Is(err, fs.ErrNotExist) && serr == nil {
			// Finished so already, by a try whose record failed (a full
			// disk): finishing again is finishing.
			return done, nil
		}
		return "", fmt.Errorf("finish %s: %w", claimed, err)
	}
	return done, nil
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
func (d Maildir) Unfinished() ([]string, error) {
	names, err := listNames(d.Path("cur"))
	if err != nil {
		return nil, err
	}
	out := names[:0]
	for _, n := range names {
		if strings.HasSuffix(n, info) {
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

// stateOf reads the state from a file name in cur/.
func stateOf(name string) State {
	i := strings.Index(name, info)
	if i < 0 {
		return StateClaimed
	}
	flags := name[i+len(info):]
	switch {
	case strings.Contains(flags, FlagFailed):
		return StateFailed
	case strings.Contains(flags, FlagAnswered):
		return StateAnswered
	case strings.Contains(flags, FlagDone):
		return StateDone
	}
	return StateClaimed
}

// Item is one message file in an inbox.
type Item struct {
	Name  string // the file name in its folder
	Path  string
	State State
	MTime time.Time
}

// List returns every message of the inbox, waiting and claimed, in name
// order (which is arrival order for Maildir names).
func (d Maildir) List() ([]Item, error) {
	var items []Item
	for _, sub := range []string{"new", "cur"} {
		names, err := listNames(d.Path(sub))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			it := Item{Name: n, Path: d.Path(sub, n), State: StateNew}
			if sub == "cur" {
				it.State = stateOf(n)
			}
			if st, err := os.Lstat(it.Path); err == nil {
				it.MTime = st.ModTime()
			}
			items = append(items, it)
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return baseName(items[i].Name) < baseName(items[j].Name) })
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
	name := baseName(filepath.Base(src))
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
