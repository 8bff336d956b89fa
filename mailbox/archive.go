package mailbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A person keeps the human's inbox as a mail client does: a message read
// carries the Maildir flag S (seen), and a message done with is moved into
// the inbox's archive, a Maildir++ subfolder (.Archive, as Dovecot and
// Courier name a subfolder, and as neomutt and notmuch show it). Neither
// touches parley's claim mark: a file keeps its unique part and mark
// wherever it goes, so its state is the same in the archive, and the
// ledger still finds it (Locate looks there too).

// FlagSeen is the Maildir flag of a message a person has read. (parley
// sets the same letter, as FlagDone, on what an agent finished: a mail
// client shows it read.)
const FlagSeen = "S"

// ArchiveDir is the archive of an inbox: a Maildir of its own inside it.
const ArchiveDir = ".Archive"

// Archive is the inbox's archive folder.
func (d Maildir) Archive() Maildir {
	return Maildir{Dir: filepath.Join(d.Dir, ArchiveDir), Max: d.Max}
}

// Seen reports whether the message file name carries the seen flag; a file
// in new/ has no flags, and is unseen.
func Seen(name string) bool {
	_, _, flags := splitName(name)
	return strings.Contains(flags, FlagSeen)
}

// MarkSeen flags the message at path (in new/ or cur/ of d) seen, as a mail
// client does when a person reads it: from new/ it moves to cur/ with
// ":2,S", in cur/ S joins the flags there. Its unique part and parley's
// mark stay. It returns the file's new path.
func (d Maildir) MarkSeen(path string) (string, error) {
	sub, name := filepath.Base(filepath.Dir(path)), filepath.Base(path)
	if sub != "new" && sub != "cur" {
		return "", fmt.Errorf("mark %s seen: not in new/ or cur/ of %s", name, d.Dir)
	}
	if sub == "cur" && Seen(name) {
		return path, nil
	}
	uniq, mark, flags := splitName(name)
	seen := uniq + info + sortFlags(mergeFlags(flags, FlagSeen))
	if mark != "" {
		seen = markedName(uniq, mark, mergeFlags(flags, FlagSeen))
	}
	to := d.Path("cur", seen)
	if err := renameFile(path, to); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("mark %s seen: %w", name, ErrVanished)
		}
		return "", fmt.Errorf("mark %s seen: %w", name, err)
	}
	return to, syncDir(d.Path("cur"))
}

// MoveToArchive moves the message at path (in new/ or cur/ of d) into the
// archive's cur/, under the same name: its mark and flags are kept (a
// message in new/ arrives unseen, with no flags). It returns the new path.
func (d Maildir) MoveToArchive(path string) (string, error) {
	sub, name := filepath.Base(filepath.Dir(path)), filepath.Base(path)
	if sub != "new" && sub != "cur" {
		return "", fmt.Errorf("archive %s: not in new/ or cur/ of %s", name, d.Dir)
	}
	a := d.Archive()
	for _, s := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(a.Path(s), 0o755); err != nil {
			return "", fmt.Errorf("archive %s: %w", name, err)
		}
	}
	if sub == "new" {
		name = Uniq(name) + info
	}
	to := a.Path("cur", name)
	if err := renameFile(path, to); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("archive %s: %w", name, ErrVanished)
		}
		return "", fmt.Errorf("archive %s: %w", name, err)
	}
	return to, syncDir(a.Path("cur"))
}
