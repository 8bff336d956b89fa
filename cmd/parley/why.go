package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/mailbox"
	"github.com/urfave/cli/v2"
)

func whyCommand() *cli.Command {
	return &cli.Command{
		Name:      "why",
		Usage:     "the messages and decisions that led to a message, a thread's outcome or a ledger line",
		ArgsUsage: "MESSAGE-ID|THREAD|SEQ",
		Description: `Answers "why did it pay 2400?" or "why did it stop?": the chain of messages
that led to it (each answering the one before), with every policy decision
about them — the rule, and the numbers it compared — the human's answers
on the thread, and the model's part where an agent runs on one (each
decision it made, each quote it read, each call that failed, with its tape),
oldest first. Give a Message-ID (with its <>), a thread (its
last message is explained), or a ledger seq.

Example:
   parley why restock-widget-1
   parley why -- '<42f77ba34e9884b1692ae97e.finance@parley>'
   parley why 41`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "the ledger entries of the answer, as JSON"}},
		Action: withRoot(1, 1, "one MESSAGE-ID, THREAD or SEQ", func(c *cli.Context, e *env) error {
			return withLookup(e, func(l lookup) error {
				entries, target, err := whyEntries(l, c.Args().First())
				if err != nil {
					return err
				}
				chain := whyChain(entries, target)
				if c.Bool("json") {
					return printJSON(e.stdout, chain)
				}
				return printWhy(e.stdout, target, chain)
			})
		}),
	}
}

// whyEntries finds the message q is about (whyTarget) and, in ledger
// order, every line the answer can rest on (whyChain): the lines of its
// thread and those naming each message it answers, following In-Reply-To
// back. The rest of the ledger is not read.
func whyEntries(l lookup, q string) ([]mailbox.Entry, mailbox.Entry, error) {
	byseq := map[uint64]mailbox.Entry{}
	add := func(es []mailbox.Entry, err error) error {
		for _, x := range es {
			byseq[x.Seq] = x
		}
		return err
	}
	sorted := func() []mailbox.Entry {
		return slices.SortedFunc(maps.Values(byseq), func(a, b mailbox.Entry) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	id := q
	if seq, err := strconv.ParseUint(q, 10, 64); err == nil {
		x, ok, err := l.Seq(seq)
		if err != nil {
			return nil, mailbox.Entry{}, err
		}
		if ok {
			byseq[x.Seq] = x
		}
		id = x.MsgID
	} else if err := add(l.Thread(q)); err != nil {
		return nil, mailbox.Entry{}, err
	}
	if id != "" {
		if err := add(l.Message(id)); err != nil {
			return nil, mailbox.Entry{}, err
		}
	}
	target, err := whyTarget(sorted(), q, func() []string { return threadNames(l) })
	if err != nil {
		return nil, mailbox.Entry{}, err
	}
	if target.Thread != "" {
		if err := add(l.Thread(target.Thread)); err != nil {
			return nil, mailbox.Entry{}, err
		}
	}
	for x, seen := target, map[string]bool{}; x.InReplyTo != "" && !seen[x.InReplyTo]; {
		seen[x.InReplyTo] = true
		if err := add(l.Message(x.InReplyTo)); err != nil {
			return nil, mailbox.Entry{}, err
		}
		var ok bool
		if x, ok = firstDelivered(byseq, x.InReplyTo); !ok {
			break
		}
	}
	return sorted(), target, nil
}

// firstDelivered is the first delivery of message id among es.
func firstDelivered(es map[uint64]mailbox.Entry, id string) (mailbox.Entry, bool) {
	var first mailbox.Entry
	for _, x := range es {
		if x.Event == mailbox.EventDelivered && x.MsgID == id && (first.Seq == 0 || x.Seq < first.Seq) {
			first = x
		}
	}
	return first, first.Seq > 0
}

// whyTarget finds the delivered message the question is about.
func whyTarget(entries []mailbox.Entry, q string, threads func() []string) (mailbox.Entry, error) {
	delivered := func(match func(mailbox.Entry) bool) (mailbox.Entry, bool) {
		for i := len(entries) - 1; i >= 0; i-- {
			if x := entries[i]; x.Event == mailbox.EventDelivered && match(x) {
				return x, true
			}
		}
		return mailbox.Entry{}, false
	}
	if seq, err := strconv.ParseUint(q, 10, 64); err == nil {
		for _, x := range entries {
			if x.Seq == seq {
				if x.MsgID == "" {
					return x, nil
				}
				if d, ok := delivered(func(y mailbox.Entry) bool { return y.MsgID == x.MsgID }); ok {
					return d, nil
				}
				return x, nil
			}
		}
		return mailbox.Entry{}, fmt.Errorf("the ledger has no seq %d", seq)
	}
	if x, ok := delivered(func(y mailbox.Entry) bool { return y.MsgID == q }); ok {
		return x, nil
	}
	if x, ok := delivered(func(y mailbox.Entry) bool { return y.Thread == q }); ok {
		return x, nil
	}
	hint := "parley thread lists the threads; parley tail --json shows message ids"
	if guess := suggest(q, threads()); guess != "" {
		hint = "did you mean " + guess + "? " + hint
	}
	return mailbox.Entry{}, withHint(fmt.Errorf("no message or thread %q in the ledger", q), hint)
}

// whyChain is, oldest first, the messages the target answers (following
// In-Reply-To back), every policy decision about them, and, on the thread
// up to the target, the decisions that were not a plain allow and the
// human's answers.
func whyChain(entries []mailbox.Entry, target mailbox.Entry) []mailbox.Entry {
	byID := map[string]mailbox.Entry{}
	for _, x := range entries {
		if x.Event == mailbox.EventDelivered && x.MsgID != "" {
			if _, seen := byID[x.MsgID]; !seen {
				byID[x.MsgID] = x
			}
		}
	}
	inChain := map[string]bool{}
	for x, ok := target, true; ok && x.MsgID != "" && !inChain[x.MsgID]; x, ok = byID[x.InReplyTo] {
		inChain[x.MsgID] = true
	}
	var out []mailbox.Entry
	shown := map[string]bool{}
	for _, x := range entries {
		if x.Seq > target.Seq {
			continue
		}
		switch {
		case x.Event == mailbox.EventDelivered && inChain[x.MsgID] && !shown[x.MsgID]:
			shown[x.MsgID] = true
			out = append(out, x)
		case x.Event == "decision" && inChain[x.MsgID] && x.Seq <= target.Seq:
			out = append(out, x)
		case x.Thread == target.Thread && target.Thread != "" && x.Event == "decision" && x.Decision != "allow":
			out = append(out, x)
		case x.Thread == target.Thread && target.Thread != "" && x.Event == agents.EventLLM &&
			(x.Rule != "llm.narrate" || x.Decision != agents.Answered):
			// The model's part: what it decided or read, and where it
			// failed; a narration used changes no outcome.
			out = append(out, x)
		case x.Thread == target.Thread && target.Thread != "" && x.Event == mailbox.EventDelivered && !shown[x.MsgID] &&
			x.Verb == string(mailbox.Escalate):
			shown[x.MsgID] = true
			out = append(out, x)
		case x.Thread == target.Thread && target.Thread != "" && x.Event == mailbox.EventDelivered && !shown[x.MsgID] &&
			(x.Verb == string(mailbox.Approved) || x.Verb == string(mailbox.Denied)) && x.To != "" && isAnswerOfHuman(entries, x):
			shown[x.MsgID] = true
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		out = append(out, target)
	}
	return out
}

// isAnswerOfHuman reports whether x answers an escalation: a message to
// the agent that escalated on the thread, from the one it escalated to.
func isAnswerOfHuman(entries []mailbox.Entry, x mailbox.Entry) bool {
	for _, y := range entries {
		if y.Seq < x.Seq && y.Event == mailbox.EventDelivered && y.Thread == x.Thread && y.Verb == string(mailbox.Escalate) && y.To == x.From {
			return true
		}
	}
	return false
}

func printWhy(w io.Writer, target mailbox.Entry, chain []mailbox.Entry) error {
	if target.MsgID == "" { // a ledger line about no message: a pause, a repair
		fmt.Fprintf(w, "seq %d: %s %s: %s\n", target.Seq, target.Agent, target.Event, firstLine(target.Reason))
		return nil
	}
	what := strings.TrimSpace(target.Verb + " " + money(target))
	fmt.Fprintf(w, "why %s from %s to %s (seq %d, thread %s):\n\n", what, target.From, target.To, target.Seq, target.Thread)
	for _, x := range chain {
		when := x.Time.UTC().Format("15:04:05")
		switch x.Event {
		case mailbox.EventDelivered:
			fmt.Fprintf(w, "%s  %5d  %s → %s  %s  %s\n", when, x.Seq, x.From, x.To, strings.TrimSpace(x.Verb+" "+money(x)), x.Subject)
		case "decision":
			fmt.Fprintf(w, "%s  %5d    policy: %s %s by %s: %s\n", when, x.Seq, x.Decision, x.Verb, x.Rule, firstLine(x.Reason))
		case agents.EventLLM:
			tape := ""
			if x.File != "" {
				tape = " (tape " + x.File + ")"
			}
			fmt.Fprintf(w, "%s  %5d    model of %s, %s: %s: %s%s\n", when, x.Seq, x.Agent, strings.TrimPrefix(x.Rule, "llm."), x.Decision, firstLine(x.Reason), tape)
		default:
			fmt.Fprintf(w, "%s  %5d    %s %s: %s\n", when, x.Seq, x.Agent, x.Event, firstLine(x.Reason))
		}
	}
	return nil
}
