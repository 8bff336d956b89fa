package policy

import (
	"bufio"
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/shopspring/decimal"
)

// The policy state's checkpoint (ROOT/.parley/checkpoint/policy.state) is
// the State as it stood after one ledger line, with that line's position:
// an engine that finds it, and finds the ledger's line there unchanged
// (mailbox.OpenLedgerFrom), starts from it and applies only the lines
// after. It is a cache of the ledger, never the truth: one that cannot be
// read, was written by another version, for another human or reserve_for
// than the policy's, or whose line the ledger no longer has, is ignored,
// the state built from the ledger's first line, and written anew.
//
// What it leaves out is the decisions by message id (State.decided): a
// retried action is checked against the ledger's index for the lines up
// to the checkpoint's (Engine.decided), which the engine brings up to date
// before it writes one. They were nine tenths of a checkpoint, and grew
// with history in every process's memory.

// StateFile is the policy state's checkpoint, under mailbox.CheckpointDir.
const StateFile = "policy.state"

// stateVersion changes whenever what a snapshot holds, or what Apply
// derives from a line, changes: an older checkpoint is then ignored.
const stateVersion = 4

// checkpointEvery is how many lines the engine applies between two
// checkpoints while it runs; an engine that closes writes one when it
// applied checkpointOnClose lines or more since the last. A checkpoint is
// a few MB written with an fsync: often enough that a start reads little,
// seldom enough that no decision waits on one.
var (
	checkpointEvery   uint64 = 50_000
	checkpointOnClose uint64 = 1_000
)

// snapshot is State, every field of it but decided, in a form gob can
// write.
type snapshot struct {
	Version int
	At      mailbox.Position
	Human   string
	Reserve time.Duration

	Accounts map[string]snapAccount
	Threads  []string // the books' threads, in order
	Open     []string
	ByAgent  map[string]decimal.Decimal
	ByItem   map[string]decimal.Decimal
	Paid     map[string]decimal.Decimal
	Retired  Figures
	RetiredN int

	Talk    map[string]snapThread
	Sent    map[string][]time.Time
	Trouble []snapTrouble
	Paused  string
	Asked   []snapEscalation
}

type snapApproval struct {
	Approval
	Ordered, Paid decimal.Decimal
}

type snapPart struct {
	Vendor               string
	Approval             *snapApproval
	Ordered              decimal.Decimal
	Order, Confirmed     *Terms
	Paid                 decimal.Decimal
	Payments             int
	PaidBeyond, BeyondOf decimal.Decimal
}

type snapAccount struct {
	Whole *snapApproval
	Parts map[string]snapPart
	Order []string
}

type snapThread struct {
	Last      time.Time
	Hops      int
	Asked     []string
	Tokens    int64
	Rounds    map[string]int
	Stopped   string
	Escalated time.Time
	AskedID   string
	Disputed  time.Time
	Answers   []snapAnswer
}

type snapAnswer struct {
	From   string
	Verb   mailbox.Verb
	Amount decimal.Decimal
	At     time.Time
}

type snapTrouble struct {
	At          time.Time
	Agent, What string
}

type snapEscalation struct {
	Escalation
	Withdrawn bool
}

func snapOfApproval(ap *Approval) *snapApproval {
	if ap == nil {
		return nil
	}
	return &snapApproval{Approval: *ap, Ordered: ap.ordered, Paid: ap.paid}
}

func (sa *snapApproval) approval() *Approval {
	if sa == nil {
		return nil
	}
	ap := sa.Approval
	ap.ordered, ap.paid = sa.Ordered, sa.Paid
	return &ap
}

// snapshotOf is s, at position at.
func snapshotOf(s *State, at mailbox.Position) *snapshot {
	b := s.books
	sn := &snapshot{Version: stateVersion, At: at, Human: b.human, Reserve: b.reserve,
		Accounts: make(map[string]snapAccount, len(b.accounts)), Threads: b.threads,
		ByAgent: b.byAgent, ByItem: b.byItem, Paid: b.paid, Retired: b.retired, RetiredN: b.retiredCount,
		Talk: make(map[string]snapThread, len(s.threads)), Sent: s.sent, Paused: s.paused}
	for id, a := range b.accounts {
		sa := snapAccount{Whole: snapOfApproval(a.Whole), Parts: make(map[string]snapPart, len(a.Parts)), Order: a.order}
		for v, p := range a.Parts {
			sa.Parts[v] = snapPart{Vendor: p.Vendor, Approval: snapOfApproval(p.Approval), Ordered: p.Ordered, Order: p.Order,
				Confirmed: p.Confirmed, Paid: p.Paid, Payments: p.Payments, PaidBeyond: p.PaidBeyond, BeyondOf: p.beyondOf}
		}
		sn.Accounts[id] = sa
	}
	for id := range b.open {
		sn.Open = append(sn.Open, id)
	}
	sort.Strings(sn.Open)
	for id, t := range s.threads {
		st := snapThread{Last: t.last, Hops: t.hops, Asked: t.asked, Tokens: t.tokens, Rounds: t.rounds, Stopped: t.stopped, Escalated: t.escalated,
			AskedID: t.askedID, Disputed: t.disputed}
		for _, a := range t.answers {
			st.Answers = append(st.Answers, snapAnswer{From: a.from, Verb: a.verb, Amount: a.amount, At: a.at})
		}
		sn.Talk[id] = st
	}
	for _, t := range s.trouble {
		sn.Trouble = append(sn.Trouble, snapTrouble{At: t.at, Agent: t.agent, What: t.what})
	}
	for _, x := range s.asked {
		sn.Asked = append(sn.Asked, snapEscalation{Escalation: *x, Withdrawn: x.withdrawn})
	}
	return sn
}

// state is the State sn holds.
func (sn *snapshot) state() *State {
	s := NewState()
	b := s.books
	b.human, b.reserve = sn.Human, sn.Reserve
	b.threads = sn.Threads
	b.byAgent, b.byItem, b.paid = orEmpty(sn.ByAgent), orEmpty(sn.ByItem), orEmpty(sn.Paid)
	b.retired, b.retiredCount = sn.Retired, sn.RetiredN
	for id, sa := range sn.Accounts {
		a := &Account{Thread: id, Whole: sa.Whole.approval(), Parts: make(map[string]*Part, len(sa.Parts)), order: sa.Order}
		for v, sp := range sa.Parts {
			a.Parts[v] = &Part{Vendor: sp.Vendor, Approval: sp.Approval.approval(), Ordered: sp.Ordered, Order: sp.Order,
				Confirmed: sp.Confirmed, Paid: sp.Paid, Payments: sp.Payments, PaidBeyond: sp.PaidBeyond, beyondOf: sp.BeyondOf}
		}
		b.accounts[id] = a
	}
	for _, id := range sn.Open {
		if a := b.accounts[id]; a != nil {
			b.open[id] = a
		}
	}
	for id, st := range sn.Talk {
		t := &thread{last: st.Last, hops: st.Hops, asked: st.Asked, tokens: st.Tokens, rounds: st.Rounds, stopped: st.Stopped, escalated: st.Escalated,
			askedID: st.AskedID, disputed: st.Disputed}
		if t.rounds == nil {
			t.rounds = map[string]int{}
		}
		for _, a := range st.Answers {
			t.answers = append(t.answers, answer{from: a.From, verb: a.Verb, amount: a.Amount, at: a.At})
		}
		s.threads[id] = t
	}
	if sn.Sent != nil {
		s.sent = sn.Sent
	}
	for _, t := range sn.Trouble {
		s.trouble = append(s.trouble, trouble{at: t.At, agent: t.Agent, what: t.What})
	}
	s.from = sn.At
	s.paused = sn.Paused
	for _, se := range sn.Asked {
		x := se.Escalation
		x.withdrawn = se.Withdrawn
		s.asked = append(s.asked, &x)
		s.escalations[x.Thread] = append(s.escalations[x.Thread], &x)
	}
	return s
}

func orEmpty(m map[string]decimal.Decimal) map[string]decimal.Decimal {
	if m == nil {
		return map[string]decimal.Decimal{}
	}
	return m
}

// writeState writes s, at position at, as root's policy state checkpoint.
func writeState(root string, s *State, at mailbox.Position) error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(snapshotOf(s, at)); err != nil {
		return fmt.Errorf("checkpoint the policy state: %w", err)
	}
	return mailbox.WriteCheckpoint(root, StateFile, buf.Bytes())
}

// errNoState says there is no checkpoint to use; why is in the error.
var errNoState = errors.New("no policy state checkpoint")

// readState reads root's policy state checkpoint.
func readState(root string) (*snapshot, error) {
	f, err := os.Open(filepath.Join(root, mailbox.CheckpointDir, StateFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoState, err)
	}
	defer f.Close()
	var sn snapshot
	if err := gob.NewDecoder(bufio.NewReaderSize(f, 1<<16)).Decode(&sn); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoState, err)
	}
	if sn.Version != stateVersion || sn.At.Seq == 0 {
		return nil, fmt.Errorf("%w: version %d, at seq %d", errNoState, sn.Version, sn.At.Seq)
	}
	return &sn, nil
}
