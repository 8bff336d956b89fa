package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/agents/llm"
	"github.com/parley-dev/parley/internal/cmdline"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
	"github.com/urfave/cli/v2"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "what the agents are doing, and what needs a person",
		ArgsUsage: " ",
		Description: `Shows every agent (running or not, by its lock and its heartbeat; its last
action), what waits in each inbox and for how long, the open threads, the
escalations waiting for the human, the circuit breaker, and spend against
the policy's limits.

Exit status is 5 when something needs a person: parley is paused, an
escalation waits, or an agent is down with mail waiting.

Example:
   parley status
   parley status --json | jq .escalations`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the status as JSON"}},
		Action: withRoot(0, 0, "no arguments", func(c *cli.Context, e *env) error {
			st, err := e.status()
			if err != nil {
				return err
			}
			if c.Bool("json") {
				err = printJSON(e.stdout, st)
			} else {
				err = st.print(e.stdout)
			}
			if err != nil {
				return err
			}
			if len(st.Attention) > 0 {
				return attentionError{st.Attention}
			}
			return nil
		}),
	}
}

// attentionError is parley status saying a person is needed: exit 5.
type attentionError struct{ why []string }

func (e attentionError) Error() string { return "needs a person: " + strings.Join(e.why, "; ") }

type agentStatus struct {
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	Running    bool      `json:"running"`
	PID        string    `json:"pid,omitempty"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
	LastAction string    `json:"last_action,omitempty"`
	LastAt     time.Time `json:"last_at,omitzero"`
	Waiting    int       `json:"waiting"`
	Oldest     time.Time `json:"oldest_waiting,omitzero"`
	Model      *modelUse `json:"model,omitempty"`   // an Ollama brain's use of its model
	Trouble    string    `json:"trouble,omitempty"` // what keeps it waiting: "disk full or failing since ..."
}

// modelUse is what an agent's model has cost, from the ledger's llm lines.
type modelUse struct {
	Model     string  `json:"model"`
	Mode      string  `json:"mode"`
	Calls     int     `json:"calls"`
	Tokens    int64   `json:"tokens"`
	Refused   int     `json:"refused"`   // answers that did not check out
	Fallbacks int     `json:"fallbacks"` // steps the rules took, or a person was asked to
	MedianMS  int64   `json:"median_ms"` // how long a call took, its wait for a turn included
	SlowestMS int64   `json:"slowest_ms"`
	Took      []int64 `json:"-"` // the latest calls' (recentCalls), for the median
}

// modelCall is a call in flight on a model server, or waiting for a turn
// on it (llm.InFlight), from any agent of any root on this machine.
type modelCall struct {
	Host    string    `json:"host"`
	Agent   string    `json:"agent"`
	What    string    `json:"what"`
	Root    string    `json:"root,omitempty"`
	Since   time.Time `json:"since"`
	Waiting bool      `json:"waiting"` // for a turn: the server is busy with others
}

// modelCalls lists what is in flight on the servers of the team's models.
func modelCalls(team *agents.Team) []modelCall {
	out := []modelCall{}
	seen := map[string]bool{}
	for _, a := range team.Agents {
		u, err := llm.ParseHost(a.Host)
		if a.Brain != "ollama" || err != nil || seen[u.String()] {
			continue
		}
		seen[u.String()] = true
		calls, waiting := llm.InFlight(llm.QueueDir(u.String()))
		for i, l := range [][]llm.Holder{calls, waiting} {
			for _, h := range l {
				out = append(out, modelCall{Host: u.String(), Agent: h.Agent, What: h.What, Root: h.Root, Since: h.Since, Waiting: i == 1})
			}
		}
	}
	return out
}

type escalation struct {
	Thread  string    `json:"thread"`
	From    string    `json:"from"`
	Subject string    `json:"subject"`
	Amount  string    `json:"amount,omitempty"`
	Since   time.Time `json:"since"`
}

type threadStatus struct {
	Thread string    `json:"thread"`
	Last   string    `json:"last"`
	At     time.Time `json:"at"`
}

type spendStatus struct {
	What  string `json:"what"`
	Spent string `json:"spent"`
	Limit string `json:"limit"`
}

// breakerStatus is the circuit breaker's count against its threshold.
type breakerStatus struct {
	Errors int    `json:"errors"` // errors and denials within the window since the last resume
	Max    int    `json:"max_errors"`
	Window string `json:"window"`
	Whose  string `json:"whose,omitempty"`
}

type status struct {
	Root        string         `json:"root"`
	Now         time.Time      `json:"now"`
	Paused      string         `json:"paused,omitempty"`
	Agents      []agentStatus  `json:"agents"`
	Escalations []escalation   `json:"escalations"`
	Expired     int            `json:"escalations_expired"` // put to the human, never answered in time
	Breaker     *breakerStatus `json:"breaker,omitempty"`
	ModelCalls  []modelCall    `json:"model_calls"` // in flight on the team's model servers
	Open        []threadStatus `json:"open_threads"`
	Spend       []spendStatus  `json:"spend"`
	Attention   []string       `json:"attention"`
}

// waiting counts the messages that wait in name's inbox — its Maildir's
// new/, and on a transport that keeps inboxes elsewhere what waits there
// (counted, not moved: the human's are brought in where a person reads
// them) — and says when the oldest came. For a person's inbox (unread)
// what a person has read waits no longer.
func (e *env) waiting(name string, unread bool) (n int, oldest time.Time) {
	var items []mailbox.Peeked
	inbox := e.root.Inbox(name)
	names, _ := inbox.Pending()
	for _, n := range names {
		if fi, err := os.Stat(inbox.Path("new", n)); err == nil {
			items = append(items, mailbox.Peeked{State: mailbox.StateNew, Time: fi.ModTime()})
		}
	}
	// And what a mail client moved into cur/ before its agent claimed it
	// (a person read it): it waits all the same.
	if e.rec == nil {
		e.rec = e.record()
	}
	moved, _ := inbox.Waiting(e.rec)
	for _, n := range moved {
		if unread && mailbox.Seen(n) {
			continue
		}
		if fi, err := os.Stat(inbox.Path("cur", n)); err == nil {
			items = append(items, mailbox.Peeked{State: mailbox.StateNew, Time: fi.ModTime()})
		}
	}
	if p, ok := e.root.Transport.(mailbox.Peeker); ok {
		held, _ := p.Peek(name)
		items = append(items, held...)
	}
	for _, it := range items {
		if it.State != mailbox.StateNew {
			continue
		}
		n++
		if oldest.IsZero() || it.Time.Before(oldest) {
			oldest = it.Time
		}
	}
	return n, oldest
}

func (e *env) status() (*status, error) {
	team, err := e.team()
	if err != nil {
		return nil, err
	}
	path, err := e.root.LedgerPath()
	if err != nil {
		return nil, err
	}
	view, err := readStatusView(e.root.Dir, path)
	if err != nil {
		return nil, err
	}
	now := e.now()
	st := &status{Root: e.root.Dir, Now: now, Escalations: []escalation{}, Open: []threadStatus{}, Attention: []string{}}
	last, uses := view.Last, view.Uses
	for _, u := range uses {
		u.figures()
	}
	st.ModelCalls = modelCalls(team)
	var beats map[string]mailbox.Beat // on a team that spans machines
	if b, ok := e.root.Transport.(mailbox.Beater); ok {
		if beats, err = b.Beats(); err != nil {
			return nil, err
		}
	}
	for _, a := range team.Agents {
		inbox := e.root.Inbox(a.Name)
		live := agents.Alive(inbox.Path("state", "lock"))
		if b, ok := beats[a.Name]; ok && !live.Running && time.Since(b.At) < agents.BeatLapse {
			// Running on another machine, as its heartbeat says.
			live = agents.Liveness{Running: true, PID: b.Who, LastSeen: b.At}
		}
		as := agentStatus{Name: a.Name, Role: a.Role, Running: live.Running, PID: live.PID, Trouble: live.Trouble}
		if as.Trouble != "" {
			st.Attention = append(st.Attention, a.Name+": "+as.Trouble)
		}
		if live.Running {
			as.LastSeen = live.LastSeen
		}
		if x, ok := last[a.Name]; ok {
			as.LastAction, as.LastAt = describe(x), x.Time
		}
		if a.Brain == "ollama" {
			as.Model = &modelUse{}
			if u := uses[a.Name]; u != nil {
				as.Model = u
			}
			as.Model.Model, as.Model.Mode = a.Model, a.LLM
		}
		as.Waiting, as.Oldest = e.waiting(a.Name, a.Role == "human")
		if live.Running && !live.LastSeen.IsZero() && a.Role != "human" && time.Since(live.LastSeen) > 30*time.Second {
			st.Attention = append(st.Attention, fmt.Sprintf("%s holds its lock but has not looked around for %s (hung?)", a.Name, age(time.Since(live.LastSeen))))
		}
		// The human's inbox is read by a person, not a process.
		if !live.Running && as.Waiting > 0 && a.Role != "human" {
			st.Attention = append(st.Attention, fmt.Sprintf("%s is down with %d message(s) waiting", a.Name, as.Waiting))
		}
		st.Agents = append(st.Agents, as)
	}
	eng := e.engine()
	if why, paused := eng.Paused(); paused {
		st.Paused = firstLine(why)
		st.Attention = append(st.Attention, "parley is paused ("+e.cmd("resume")+" lifts it)")
	}
	st.Open = openThreads(view.Open)
	s, p, err := eng.State()
	if err != nil {
		return nil, err
	}
	for _, x := range s.Escalations(team.Human, "") {
		switch x.State(now) {
		case policy.Waiting:
			amount := ""
			if x.Amount != "" {
				amount = x.Amount + " " + x.Currency
			}
			st.Escalations = append(st.Escalations, escalation{Thread: x.Thread, From: x.From, Subject: x.Subject, Amount: amount, Since: x.At})
			st.Attention = append(st.Attention, "an escalation waits on "+x.Thread)
		case policy.Expired:
			st.Expired++
		}
	}
	if p != nil && p.Breaker.MaxErrors > 0 {
		n, whose := s.Troubles(p, now)
		st.Breaker = &breakerStatus{Errors: n, Max: p.Breaker.MaxErrors, Window: p.Breaker.Window.Duration.String(), Whose: whose}
	}
	if p != nil {
		for _, a := range team.Agents {
			day, month := s.Spent(a.Name, now)
			if day.IsZero() && month.IsZero() {
				continue
			}
			st.Spend = append(st.Spend,
				spendStatus{a.Name + " today", mailbox.Money{Amount: day, Currency: p.Currency}.String(), p.Limits.PerAgentPerDay.String()},
				spendStatus{a.Name + " this month", mailbox.Money{Amount: month, Currency: p.Currency}.String(), p.Limits.PerAgentPerMonth.String()})
		}
		if !p.Budget.Amount.IsZero() {
			st.Spend = append(st.Spend, spendStatus{"budget this " + p.Budget.Period, mailbox.Money{Amount: s.BudgetUsed(p, now), Currency: p.Currency}.String(), p.Budget.Amount.String()})
		}
	}
	return st, nil
}

// describe says what a ledger entry was, in a few words.
func describe(x mailbox.Entry) string {
	switch x.Event {
	case mailbox.EventDelivered:
		return fmt.Sprintf("sent %s to %s", x.Verb, x.To)
	case mailbox.EventClaimed, mailbox.EventDone:
		return fmt.Sprintf("%s %s from %s", x.Event, x.Verb, x.From)
	case "decision":
		return fmt.Sprintf("%s %s to %s (%s)", x.Decision, x.Verb, x.To, x.Rule)
	}
	if x.Reason != "" {
		return x.Event + ": " + firstLine(x.Reason)
	}
	return x.Event
}

// openThreads are the threads whose last message does not end a deal,
// oldest first.
func openThreads(open map[string]mailbox.Entry) []threadStatus {
	out := []threadStatus{}
	for th, x := range open {
		out = append(out, threadStatus{Thread: th, Last: fmt.Sprintf("%s %s → %s", x.Verb, x.From, x.To), At: x.Time})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

func (st *status) print(w io.Writer) error {
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return age(st.Now.Sub(t)) + " ago"
	}
	if st.Paused != "" {
		fmt.Fprintf(w, "PAUSED: %s\n\n", st.Paused)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tROLE\tRUNNING\tSEEN\tWAITING\tOLDEST\tLAST ACTION")
	for _, a := range st.Agents {
		run := "no"
		if a.Running {
			run = "pid " + a.PID
		}
		last := "-"
		if a.LastAction != "" {
			last = a.LastAction + ", " + ago(a.LastAt)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", a.Name, a.Role, run, ago(a.LastSeen), a.Waiting, ago(a.Oldest), last)
	}
	tw.Flush()
	for _, a := range st.Agents {
		if a.Model == nil {
			continue
		}
		u := a.Model
		fmt.Fprintf(w, "model of %s: %s (%s): %d calls, %d tokens, %d answers refused, %d fallbacks", a.Name, u.Model, u.Mode, u.Calls, u.Tokens, u.Refused, u.Fallbacks)
		if u.SlowestMS > 0 {
			fmt.Fprintf(w, "; a call takes %s, the slowest %s", time.Duration(u.MedianMS)*time.Millisecond, time.Duration(u.SlowestMS)*time.Millisecond)
		}
		fmt.Fprintln(w)
	}
	for _, c := range st.ModelCalls {
		how := "in flight"
		if c.Waiting {
			how = "waiting for a turn"
		}
		whose := c.Agent
		if abs, _ := filepath.Abs(st.Root); c.Root != "" && c.Root != abs {
			whose += " of " + c.Root
		}
		fmt.Fprintf(w, "model call %s on %s: %s %s, for %s\n", how, c.Host, whose, c.What, age(st.Now.Sub(c.Since)))
	}
	fmt.Fprintf(w, "\nescalations waiting for the human: %d\n", len(st.Escalations))
	for _, x := range st.Escalations {
		fmt.Fprintf(w, "  %s (%s, from %s): %s\n    answer: %s\n", x.Thread, ago(x.Since), x.From, x.Subject, answerHint(st.Root, x.Thread, x.Amount != ""))
	}
	if b := st.Breaker; b != nil {
		fmt.Fprintf(w, "circuit breaker: %d of %d errors or denials within %s", b.Errors, b.Max, b.Window)
		if b.Whose != "" {
			fmt.Fprintf(w, " (%s)", b.Whose)
		}
		fmt.Fprintln(w)
	}
	if st.Expired > 0 {
		fmt.Fprintf(w, "escalations that expired unanswered: %d (%s)\n", st.Expired, cmdline.Render(st.Root, "inbox", "human"))
	}
	fmt.Fprintf(w, "open threads: %d\n", len(st.Open))
	for _, t := range st.Open {
		fmt.Fprintf(w, "  %s: last %s, %s\n", t.Thread, t.Last, ago(t.At))
	}
	if len(st.Spend) > 0 {
		fmt.Fprintln(w, "spend:")
		for _, s := range st.Spend {
			fmt.Fprintf(w, "  %-24s %s of %s\n", s.What, s.Spent, s.Limit)
		}
	}
	if len(st.Attention) == 0 {
		_, err := fmt.Fprintln(w, "nothing needs a person")
		return err
	}
	_, err := fmt.Fprintf(w, "needs a person: %s\n", strings.Join(st.Attention, "; "))
	return err
}

// answerHint is the command that answers the escalation on thread: one
// that asks no spend has nothing to approve; a person does what it says and
// closes it.
func answerHint(root, thread string, spend bool) string {
	if spend {
		return fmt.Sprintf("%s   or: %s", cmdline.Render(root, "approve", thread), cmdline.Render(root, "deny", thread, "--reason", "..."))
	}
	return fmt.Sprintf("it asks no spend: read it (%s), do what it says, then close it: %s",
		cmdline.Render(root, "inbox", "human"), cmdline.Render(root, "deny", thread, "--reason", "..."))
}
