package policy

import (
	"slices"
	"time"

	"github.com/parley-dev/parley/mailbox"
)

// A thread whose deal is over — no line on it for retireAfter, no question
// to the human waiting or expired, and no money it holds or owes, now or
// ever again without a new line — is retired when the engine writes a
// checkpoint: its part of the state leaves memory and the checkpoint, so
// that neither grows with history (issue 18). Nothing about it is lost:
// the ledger's index has its lines, and a line or an action on it later
// brings it back (restore), exactly as it was, before the line is applied
// or the action judged. What the books total over every thread keeps the
// retired ones' figures, which cannot change while they are retired.

// retireAfter is how long a thread has had no line before it may retire:
// long after any retry, reminder or late answer of a deal's own.
const retireAfter = 7 * 24 * time.Hour

// retirable reports whether thread id may retire at now.
func (s *State) retirable(id string, t *thread, now time.Time) bool {
	if now.Sub(t.last) < retireAfter || !t.escalated.IsZero() {
		return false
	}
	for _, x := range s.escalations[id] {
		if st := x.State(now); st == Waiting || st == Expired {
			return false // status counts what expired unanswered
		}
	}
	a := s.books.accounts[id]
	return a == nil || a.settledFor(s.books.reserve, now)
}

// settledFor reports whether the account holds and owes nothing at now and
// never will again without a new line: each approval released, settled
// or lapsed unused, nothing ordered and unpaid. Its figures stay as they
// are.
func (a *Account) settledFor(reserve time.Duration, now time.Time) bool {
	over := func(ap *Approval) bool {
		return ap == nil || ap.Released || ap.settled() || ap.lapsed(reserve, now)
	}
	if !over(a.Whole) {
		return false
	}
	for _, p := range a.Parts {
		if !over(p.Approval) || p.Committed().IsPositive() {
			return false
		}
	}
	return true
}

// retire takes out of the state every thread that may retire at now, and
// returns how many did.
func (s *State) retire(now time.Time) int {
	gone := map[string]bool{}
	for id, t := range s.threads {
		if s.retirable(id, t, now) {
			gone[id] = true
		}
	}
	if len(gone) == 0 {
		return 0
	}
	b := s.books
	for id := range gone {
		if a := b.accounts[id]; a != nil {
			b.retired.Add(a.Figures(b.reserve, now))
			b.retiredCount++
		}
		delete(s.threads, id)
		delete(b.accounts, id)
		delete(b.open, id)
		delete(s.escalations, id)
	}
	b.threads = slices.DeleteFunc(b.threads, func(id string) bool { return gone[id] })
	s.asked = slices.DeleteFunc(s.asked, func(x *Escalation) bool { return gone[x.Thread] })
	return len(gone)
}

// held reports whether the state holds thread id: it has a line on it
// since it started, or from the checkpoint it started from.
func (s *State) held(id string) bool { return s.threads[id] != nil }

// restore brings back a retired thread from its lines up to the state's
// checkpoint (lines, in order, all on one thread): they are applied to a
// state of their own, and the thread's part of it taken over — the talk,
// the account, the questions to the human — while what they add to the
// figures by agent, day and month is in this state already.
func (s *State) restore(id string, lines []mailbox.Entry, now time.Time) {
	if len(lines) == 0 || s.held(id) {
		return
	}
	own := NewState()
	own.books.human, own.books.reserve = s.books.human, s.books.reserve
	for _, x := range lines {
		own.Apply(x)
	}
	s.threads[id] = own.thread(id)
	b := s.books
	if a := own.books.accounts[id]; a != nil {
		b.accounts[id] = a
		b.open[id] = a
		b.retired.Sub(a.Figures(b.reserve, now))
		b.retiredCount--
		b.threads = append(b.threads, id)
	}
	if xs := own.escalations[id]; len(xs) > 0 {
		s.escalations[id] = xs
		s.asked = append(s.asked, xs...)
		slices.SortStableFunc(s.asked, func(a, b *Escalation) int { return a.At.Compare(b.At) })
	}
}
