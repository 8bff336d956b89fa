package main

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/parley-dev/parley/mailbox"
)

// lookup finds the ledger's lines about one deal: the commands that show
// one (thread ID, why) ask it, and read no more of the ledger than that.
type lookup interface {
	Thread(id string) ([]mailbox.Entry, error)
	Message(id string) ([]mailbox.Entry, error)
	Seq(seq uint64) (mailbox.Entry, bool, error)
	Threads(fn func(thread string) bool) error
	Close() error
}

// indexShown is how much of the ledger an index must read before it says
// so on a terminal: the first command after an upgrade reads it all.
const indexShown = 64 << 20

// openLookup is the root's ledger index, brought up to date (with its
// progress on a terminal when it has much to read), or, where there is
// none to keep (a team on JetStream reads its stream) or it cannot be
// kept, the whole ledger read into memory.
func openLookup(e *env) (lookup, error) {
	if e.root.Transport == nil {
		progress := func(done, total int64) {
			if total >= indexShown && isTerminal(e.stderr) {
				fmt.Fprintf(e.stderr, "\rindexing the ledger: %d of %d MB", done>>20, total>>20)
				if done == total {
					fmt.Fprintf(e.stderr, "\r%40s\r", "")
				}
			}
		}
		ix, err := mailbox.OpenIndex(e.root.Dir, progress)
		switch {
		case err == nil:
			return ix, nil
		case errors.Is(err, fs.ErrNotExist):
			return wholeLedger(nil), nil
		case errors.Is(err, fs.ErrPermission):
			// A root this user may read but not write: no index to keep.
		default:
			return nil, withHint(err, "parley ledger reindex builds the index again from the ledger")
		}
	}
	entries, err := readLedger(e.root)
	if err != nil {
		return nil, err
	}
	return wholeLedger(entries), nil
}

// withLookup runs fn with the root's lookup; if the index turns out to be
// out of step with the ledger, it is thrown away and fn runs again on the
// whole ledger.
func withLookup(e *env, fn func(lookup) error) error {
	l, err := openLookup(e)
	if err != nil {
		return err
	}
	err = fn(l)
	l.Close()
	if !errors.Is(err, mailbox.ErrIndexStale) {
		return err
	}
	if err := mailbox.RemoveIndex(e.root.Dir); err != nil {
		return err
	}
	entries, err := readLedger(e.root)
	if err != nil {
		return err
	}
	return fn(wholeLedger(entries))
}

// wholeLedger is a lookup over the ledger read whole.
type wholeLedger []mailbox.Entry

func (w wholeLedger) filter(keep func(mailbox.Entry) bool) []mailbox.Entry {
	var out []mailbox.Entry
	for _, x := range w {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}

func (w wholeLedger) Thread(id string) ([]mailbox.Entry, error) {
	return w.filter(func(x mailbox.Entry) bool { return x.Thread == id }), nil
}

func (w wholeLedger) Message(id string) ([]mailbox.Entry, error) {
	return w.filter(func(x mailbox.Entry) bool { return x.MsgID == id }), nil
}

func (w wholeLedger) Seq(seq uint64) (mailbox.Entry, bool, error) {
	i := slices.IndexFunc(w, func(x mailbox.Entry) bool { return x.Seq == seq })
	if i < 0 {
		return mailbox.Entry{}, false, nil
	}
	return w[i], true, nil
}

func (w wholeLedger) Threads(fn func(string) bool) error {
	for _, th := range threadsOf(w) {
		if !fn(th) {
			break
		}
	}
	return nil
}

func (w wholeLedger) Close() error { return nil }

// threadNames is every thread the ledger has, for a did-you-mean.
func threadNames(l lookup) []string {
	var out []string
	_ = l.Threads(func(th string) bool { out = append(out, th); return true }) // a suggestion, or none
	return out
}
