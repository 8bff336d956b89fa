package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/internal/cmdline"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
	"github.com/urfave/cli/v2"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:      "demo",
		Usage:     "watch the team restock an item, from low stock to the human's notice",
		ArgsUsage: " ",
		Description: `Initialises the root if it needs it (keeping whatever is there), starts every
agent as its own process, lowers the stock of the inventory's first item
below its reorder point and shows the conversation as it happens: the
request, the quotes, the counter-offers, finance's approval, the order, the
confirmation, the payment, and the notices to the human and the inventory.
It ends when every agent has finished with every message sent to it, so
parley status afterwards finds no agent down with work waiting; the stock
file is put back as it was. When the policy asks the human (an amount
above the sign-off threshold, or a second order of the item from one vendor
in a day), the demo's human answers as --human says: approve (the default),
deny, or ask, which leaves the answer to you (parley approve THREAD in
another terminal).

Example:
   parley demo
   parley --root /tmp/try demo`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "scenario", Value: defaultScenario, Usage: "the scenario to play (docs/SCENARIOS.md); \"\" for the root's own team"},
			&cli.DurationFlag{Name: "timeout", Value: time.Minute, Usage: "give up after this long"},
			&cli.StringFlag{Name: "human", Usage: "how the human answers when asked: approve, deny or ask (default: the scenario's answer, else approve)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 0, "no arguments"); err != nil {
				return err
			}
			play := demoPlay{answer: "approve"}
			if path := c.String("scenario"); path != "" {
				s, err := agents.LoadScenario(path)
				if err != nil {
					if c.IsSet("scenario") || !errors.Is(err, os.ErrNotExist) {
						return err
					}
				} else {
					play.scenario, play.answer = s, s.Human.Answer
					if err := prepareRoot(c.String("root"), s); err != nil {
						return err
					}
				}
			}
			if c.IsSet("human") {
				// Another answer than the scenario's makes another story: its
				// expected outcome no longer applies.
				play.overridden = play.scenario != nil && c.String("human") != play.scenario.Human.Answer
				play.answer = c.String("human")
			}
			if play.answer != "approve" && play.answer != "deny" && play.answer != "ask" {
				return usageError{fmt.Errorf("--human is approve, deny or ask, not %q", play.answer)}
			}
			if err := initRoot(c); err != nil {
				return err
			}
			e, err := open(c)
			if err != nil {
				return err
			}
			defer e.close()
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
			defer cancel()
			return e.demo(ctx, play)
		},
	}
}

// defaultScenario is the story, played when it is there (in a checkout).
const defaultScenario = "testdata/scenarios/restock-widget.toml"

// demoPlay is what the demo plays: a scenario, or the root's own team.
type demoPlay struct {
	scenario   *agents.Scenario // nil: the root's team and its first stock item
	answer     string
	overridden bool // --human changed the scenario's answer
}

// prepareRoot makes a new root from the scenario, or checks that an
// existing one holds the scenario's team: the demo never rewrites a team.
func prepareRoot(dir string, s *agents.Scenario) error {
	teamPath := filepath.Join(dir, agents.TeamFile)
	if fileExists(teamPath) {
		team, err := agents.LoadTeam(teamPath)
		if err != nil {
			return err
		}
		if err := s.Matches(team); err != nil {
			return withHint(fmt.Errorf("%s holds another team than scenario %s: %w", dir, s.Name, err),
				fmt.Sprintf("play it in a root of its own: parley --root /tmp/%s demo --scenario FILE", s.Name))
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Join(dir, "inventory"), 0o755); err != nil {
		return err
	}
	for path, data := range map[string][]byte{
		teamPath:                        s.TeamFile(),
		filepath.Join(dir, policy.File): s.PolicyFile(),
		filepath.Join(dir, "inventory", agents.StockFile): s.StockFile(s.Need.ReorderPoint + s.Need.Quantity),
	} {
		if _, err := createFile(path, data); err != nil {
			return err
		}
	}
	return nil
}

func (e *env) demo(ctx context.Context, play demoPlay) error {
	team, err := e.team()
	if err != nil {
		return err
	}
	answer := play.answer
	inv := team.Agents[0].Name
	for _, a := range team.Agents {
		if a.Role == "inventory" {
			inv = a.Name
			break
		}
	}
	stockPath := e.root.Inbox(inv).Path(agents.StockFile)
	original, err := os.ReadFile(stockPath)
	if err != nil {
		return withHint(fmt.Errorf("read stock: %w", err), "parley init writes one for the inventory agent")
	}
	items, err := agents.LoadStock(stockPath)
	if err != nil {
		return err
	}
	item := items[0]
	low := item.ReorderPoint * 2 / 5
	names := team.Names()
	if s := play.scenario; s != nil {
		found := false
		for _, it := range items {
			if it.Name == s.Need.Item {
				item, found = it, true
			}
		}
		if !found {
			return fmt.Errorf("%s has no item %s, the scenario's need", stockPath, s.Need.Item)
		}
		low = s.Need.Stock
		names = names[:0]
		for _, n := range team.Names() {
			if !s.Silent(n) {
				names = append(names, n)
			}
		}
	}
	defer os.WriteFile(stockPath, original, 0o644) // the goods arrived: the stock is as it was

	agentCtx, cancelAgents := context.WithCancel(context.Background())
	logs := &lineLog{}
	upDone := make(chan error, 1)
	go func() { upDone <- e.up(agentCtx, names, logs) }()
	stopAgents := sync.OnceFunc(func() { cancelAgents(); <-upDone })
	defer stopAgents()

	// Start from no open need: the stock at or above the reorder point, as
	// the inventory agent sees it.
	if item.Stock < item.ReorderPoint {
		if err := writeStock(stockPath, items, item.Name, item.ReorderPoint+item.ReorderQuantity); err != nil {
			return err
		}
	}
	if err := awaitNeedClosed(ctx, e.root, inv, item.Name); err != nil {
		fmt.Fprint(e.stderr, logs.String())
		return fmt.Errorf("the inventory agent did not take the stock in: %w (its lines are above)", err)
	}
	since, err := newLedgerSince(e.root)
	if err != nil {
		return err
	}
	start := since.seq
	if play.scenario != nil {
		fmt.Fprintf(e.stdout, "scenario %s: %s\n", play.scenario.Name, play.scenario.Description)
	}
	fmt.Fprintf(e.stdout, "%s: stock of %s falls to %d (reorder point %d)\n\n", e.now().Local().Format("15:04:05"), item.Name, low, item.ReorderPoint)
	if err := writeStock(stockPath, items, item.Name, low); err != nil {
		return err
	}
	began := time.Now()
	var working []string // the agents whose work the demo waits to see finished
	for _, n := range names {
		if n != team.Human {
			working = append(working, n)
		}
	}
	notice, err := e.showDeal(ctx, since, team.Human, answer, working)
	if err != nil {
		fmt.Fprintf(e.stderr, "\nThe agents said:\n%s", logs.String())
		return err
	}
	took := time.Since(began)
	stopAgents()

	if _, err := since.next(); err != nil {
		return err
	}
	messages, decisions := 0, 0
	for _, x := range since.got {
		if x.Seq <= start {
			continue
		}
		switch x.Event {
		case mailbox.EventDelivered:
			messages++
		case "decision":
			decisions++
		}
	}
	fmt.Fprintf(e.stdout, "\n%s's inbox: %s\n", team.Human, notice)
	fmt.Fprintf(e.stdout, "%d messages and %d policy decisions in %.1f s; every one is in %s\n", messages, decisions, took.Seconds(),
		filepath.Join(e.root.Dir, mailbox.LedgerFile))
	f, err := mailbox.OpenLedgerReader(filepath.Join(e.root.Dir, mailbox.LedgerFile))
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := mailbox.Verify(f)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "ledger verified: %d entries, head %s\n", res.Lines, res.Head[:16])
	if s := play.scenario; s != nil && s.Expect.Outcome != "" && !play.overridden {
		if err := s.Check(notice); err != nil {
			if spentBefore(notice) {
				// Not the story's fault: earlier runs spent what the policy
				// allows in a day or a month, and the policy said no.
				fmt.Fprintf(e.stdout, "outcome: no order: the policy's limits were reached by what was spent before (%s shows it);\n"+
					"  a root of its own plays the story afresh: %s\n", e.cmd("tail"), cmdline.Render("/tmp/parley-demo", "demo"))
				return nil
			}
			return err
		}
		fmt.Fprintf(e.stdout, "outcome: %s, as scenario %s expects\n", s.Expect.Outcome, s.Name)
	}
	return nil
}

// spentBefore reports whether a failure notice is the policy refusing money
// because of limits that earlier spending used up.
func spentBefore(notice string) bool {
	for _, rule := range []string{"limits.per_agent_per_day", "limits.per_agent_per_month", "(policy rule budget)", "budget:"} {
		if strings.Contains(notice, rule) {
			return true
		}
	}
	return false
}

// showDeal prints each message delivered after seq start until the human
// is notified and the working agents have finished with every message
// sent to them (the PAID and the inventory's notice come after the
// human's), and returns the notice. Stopping at the notice alone left an
// agent down with a message waiting.
func (e *env) showDeal(ctx context.Context, since *ledgerSince, human, answer string, working []string) (string, error) {
	seen := since.seq
	asked := map[string]bool{}
	shown := map[string]bool{}  // message ids printed
	deal := ""                  // the thread of the inventory's request: the deal shown
	notice := ""                // the human's notice, once it came
	open := map[string]string{} // message id: the working agent it is for, until it finishes it
	works := map[string]bool{}
	for _, n := range working {
		works[n] = true
	}
	for {
		entries, err := since.next()
		if err != nil {
			return "", err
		}
		for _, x := range entries {
			if x.Seq <= seen {
				continue
			}
			seen = x.Seq
			switch x.Event {
			case mailbox.EventDelivered, mailbox.EventClaimed:
				if works[x.To] {
					if _, ended := open[x.MsgID]; !ended {
						open[x.MsgID] = x.To
					}
				}
			case mailbox.EventDone, mailbox.EventFailed, mailbox.EventRejected, mailbox.EventBounced:
				open[x.MsgID] = "" // finished: a later line about it does not reopen it
			}
			// A message is shown at its first line: its delivery, or its
			// claim, which its receiver may record (and act on) before
			// the sender records the delivery.
			if (x.Event != mailbox.EventDelivered && x.Event != mailbox.EventClaimed) || shown[x.MsgID] {
				continue
			}
			shown[x.MsgID] = true
			money := ""
			if x.Amount != "" {
				money = "  " + x.Amount + " " + x.Currency
			}
			fmt.Fprintf(e.stdout, "%s  %-11s → %-11s %-9s %s%s\n", x.Time.Local().Format("15:04:05"), x.From, x.To, x.Verb, x.Subject, money)
			switch {
			case deal == "" && x.Verb == string(mailbox.Request) && strings.HasPrefix(x.Thread, "restock-"):
				deal = x.Thread
			case x.To == human && x.Verb == string(mailbox.Notify) && strings.HasPrefix(x.Thread, "stock-file-"):
				return "", errors.New(x.Subject)
			case x.To == human && x.Verb == string(mailbox.Notify) && x.Thread == deal && notice == "":
				notice = x.Subject
			case x.To == human && x.Verb == string(mailbox.Escalate) && !asked[x.Thread]:
				asked[x.Thread] = true
				if answer == "ask" {
					fmt.Fprintf(e.stdout, "\n  The policy asks you. Answer in another terminal:\n    %s   (or: %s)\n\n",
						e.cmd("approve", x.Thread), e.cmd("deny", x.Thread, "--reason", "..."))
					continue
				}
				verb, text := mailbox.Approved, "approved by the demo's human (--human approve)"
				if answer == "deny" {
					verb, text = mailbox.Denied, "denied by the demo's human (--human deny)"
				}
				if _, err := e.answer(x.Thread, verb, human, "", text); err != nil {
					return "", err
				}
			}
		}
		if notice != "" && e.settled(open, working) {
			return notice, nil
		}
		select {
		case <-ctx.Done():
			if notice != "" {
				return "", withHint(fmt.Errorf("the agents did not finish their work in time after %s was told: %w", human, ctx.Err()),
					"parley status shows what waits, and for whom")
			}
			return "", fmt.Errorf("no notice reached %s in time: %w", human, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// settled reports whether the working agents are idle: every message sent
// to one of them that the ledger shows is finished (an agent records its
// own messages' deliveries before it finishes the one that caused them),
// and none waits in their inboxes unrecorded.
func (e *env) settled(open map[string]string, working []string) bool {
	for _, to := range open {
		if to != "" {
			return false
		}
	}
	e.rec = nil // read afresh: the agents go on writing
	for _, n := range working {
		if waiting, _ := e.waiting(n, false); waiting > 0 {
			return false
		}
	}
	return true
}

// ledgerSince reads the lines appended to the ledger after the point it
// started at, each call those since the last: a watcher that costs what
// was appended, not the ledger's history.
type ledgerSince struct {
	r   *mailbox.Root
	off int64           // where the next line starts
	seq uint64          // of the last line read, or the last before the start
	got []mailbox.Entry // every line read since the start
}

// newLedgerSince starts at the ledger's last whole line now.
func newLedgerSince(r *mailbox.Root) (*ledgerSince, error) {
	l := &ledgerSince{r: r}
	err := l.read(func(buf []byte, end int64) error {
		l.off = end
		if len(buf) == 0 {
			return nil
		}
		i := bytes.LastIndexByte(buf[:len(buf)-1], '\n')
		seq, err := mailbox.LineSeq(buf[i+1:])
		l.seq = seq
		return err
	}, true)
	return l, err
}

// next returns the whole lines appended since the last call.
func (l *ledgerSince) next() ([]mailbox.Entry, error) {
	var out []mailbox.Entry
	err := l.read(func(buf []byte, end int64) error {
		err := mailbox.ReadEntries(bytes.NewReader(buf), func(_ int, x mailbox.Entry) error { out = append(out, x); return nil })
		if err != nil {
			return fmt.Errorf("read ledger: %w", err)
		}
		l.off = end
		return nil
	}, false)
	if len(out) > 0 {
		l.seq = out[len(out)-1].Seq
		l.got = append(l.got, out...)
	}
	return out, err
}

// read hands fn the ledger's bytes from l.off (with last, only its last
// megabyte) up to its last newline, and where they end.
func (l *ledgerSince) read(fn func(buf []byte, end int64) error, last bool) error {
	path, err := l.r.LedgerPath()
	if err != nil {
		return err
	}
	f, err := mailbox.OpenLedgerReader(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return err
	}
	from := l.off
	if last {
		from = max(0, size-1<<20)
	}
	buf := make([]byte, size-from)
	if _, err := f.ReadAt(buf, from); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read ledger: %w", err)
	}
	cut := bytes.LastIndexByte(buf, '\n') + 1 // a line still being written waits
	return fn(buf[:cut], from+int64(cut))
}

// writeStock writes the stock file with one item's stock changed.
func writeStock(path string, items []agents.StockItem, name string, stock int64) error {
	var b bytes.Buffer
	b.WriteString("# Set by parley demo; it puts the file back as it was when it ends.\n")
	for _, it := range items {
		if it.Name == name {
			it.Stock = stock
		}
		fmt.Fprintf(&b, "\n[[item]]\nname = %q\nstock = %d\nreorder_point = %d\nreorder_quantity = %d\ndeliver_within_days = %d\n",
			it.Name, it.Stock, it.ReorderPoint, it.ReorderQuantity, it.DeliverWithinDays)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// awaitNeedClosed waits until the inventory agent's state shows no open
// need for item (a fresh agent has none).
func awaitNeedClosed(ctx context.Context, r *mailbox.Root, inv, item string) error {
	for {
		var st struct {
			Role struct{ Open map[string]string }
		}
		data, err := agents.StateOf(r, inv)
		if err == nil && data == nil {
			return nil
		}
		if err == nil && json.Unmarshal(data, &st) == nil && st.Role.Open[item] == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// lineLog keeps what several writers write (the agents' lines, a
// command's output), whole, up to limit bytes when limit is set.
type lineLog struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limit == 0 {
		return l.buf.Write(p)
	}
	if room := l.limit - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
