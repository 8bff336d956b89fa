package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/parley-dev/parley/mailbox"
	"github.com/urfave/cli/v2"
)

func tailCommand() *cli.Command {
	return &cli.Command{
		Name:      "tail",
		Usage:     "show the ledger, one readable line an entry",
		ArgsUsage: " ",
		Description: `Prints the last entries of the ledger: seq, time, the agent that wrote it,
the event, the verb, sender and recipient, the amount and the thread. With
-f it keeps printing entries as agents append them, until Ctrl-C.

-n counts as tail(1) does: -n 5 the last five, -n 0 none (with -f, only
what comes from now on), -n +1 every entry from the first. Colours only on
a terminal, and never with NO_COLOR set.

Example:
   parley tail
   parley tail -n +1 --json | jq 'select(.event == "rejected")'
   parley tail -f -n 0 --thread restock-widget-1
   parley tail -f --agent finance --verb APPROVED --verb PAID`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "n", Value: "20", Usage: "how many of the last entries to show (0: none), or +K: from the K-th on"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new entries"},
			&cli.BoolFlag{Name: "json", Usage: "print the ledger's own JSON lines"},
			&cli.StringSliceFlag{Name: "agent", Usage: "only entries written by, from or to this agent (repeat for more)"},
			&cli.StringSliceFlag{Name: "thread", Usage: "only this thread (repeat for more)"},
			&cli.StringSliceFlag{Name: "verb", Usage: "only this verb (repeat for more)"},
		},
		Action: withRoot(0, 0, "no arguments", func(c *cli.Context, e *env) error {
			path, err := e.root.LedgerPath()
			if err != nil {
				return err
			}
			f, err := mailbox.OpenLedgerReader(path)
			if errors.Is(err, fs.ErrNotExist) {
				return withHint(fmt.Errorf("%s has no ledger yet", e.root.Dir), "parley init creates it")
			}
			if err != nil {
				return fmt.Errorf("open ledger: %w", err)
			}
			defer f.Close()
			last, from, err := lines(c.String("n"))
			if err != nil {
				return misuse(c.Command, err, "")
			}
			verbs, err := e.filters(c)
			if err != nil {
				return err
			}
			t := &tailer{out: bufio.NewWriter(e.stdout), json: c.Bool("json"), now: e.now, color: colored(e.stdout),
				agents: c.StringSlice("agent"), threads: c.StringSlice("thread"), verbs: verbs}
			if last > 0 {
				err = t.lastOf(f, last) // from the end: as fast on a ledger of years
			} else {
				err = t.last(f, last, from)
			}
			if err != nil {
				return err
			}
			if !c.Bool("follow") {
				return nil
			}
			if e.root.Transport != nil {
				go e.copyLedger(c.Context) // the copy the follow reads grows as the ledger does
			}
			return t.follow(c.Context, f)
		}),
	}
}

type tailer struct {
	out     *bufio.Writer
	json    bool
	color   bool
	now     func() time.Time
	partial []byte // an incomplete last line, waiting for the rest

	agents, threads, verbs []string // filters: empty passes all
}

// wants applies the filters.
func (t *tailer) wants(e mailbox.Entry) bool {
	in := func(list []string, vals ...string) bool {
		if len(list) == 0 {
			return true
		}
		for _, v := range vals {
			if v != "" && contains(list, v) {
				return true
			}
		}
		return false
	}
	return in(t.agents, e.Agent, e.From, e.To) && in(t.threads, e.Thread) && in(t.verbs, e.Verb)
}

// lines reads -n as tail(1) does: N, the last N lines (0: none), or +K,
// every line from the K-th (from is K, and last -1).
func lines(n string) (last, from int, err error) {
	if k, ok := strings.CutPrefix(n, "+"); ok {
		from, err = strconv.Atoi(k)
		if err != nil || from < 0 {
			return 0, 0, fmt.Errorf("-n +%s: want +K, a line number", k)
		}
		return -1, max(from, 1), nil
	}
	last, err = strconv.Atoi(n)
	if err != nil || last < 0 {
		return 0, 0, fmt.Errorf("-n is a count of entries (or +K, from the K-th on), not %s", n)
	}
	return last, 0, nil
}

// filters checks the --agent and --verb filters of a listing command and
// returns the verbs, as the protocol writes them.
func (e *env) filters(c *cli.Context) ([]string, error) {
	verbs, err := verbsOf(c.Command, c.StringSlice("verb"))
	if err != nil {
		return nil, err
	}
	for _, a := range c.StringSlice("agent") {
		if err := e.agent(a); err != nil && a != mailbox.System {
			return nil, fmt.Errorf("--agent: %w", err)
		}
	}
	return verbs, nil
}

// verbsOf is the verbs named, in any case, as the protocol writes them;
// one that is no verb is a usage error, with the verb probably meant.
func verbsOf(cmd *cli.Command, names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		v, err := verbNamed(n)
		if err != nil {
			return nil, misuse(cmd, fmt.Errorf("--verb: %w", err), suggest(n, verbNames()))
		}
		out = append(out, v)
	}
	return out, nil
}

// verbNamed is the verb n names, in any case.
func verbNamed(n string) (string, error) {
	for _, v := range mailbox.Verbs {
		if strings.EqualFold(string(v), n) {
			return string(v), nil
		}
	}
	return "", fmt.Errorf("%q is not a verb", n)
}

// last prints the last n complete lines of r (with n -1: every line from
// the from-th on).
func (t *tailer) last(r io.Reader, n, from int) error {
	var ring [][]byte
	br := bufio.NewReaderSize(r, 1<<16)
	for i := 1; ; i++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			t.partial = line
			break
		}
		if err != nil {
			return fmt.Errorf("read ledger: %w", err)
		}
		if n == 0 || (n < 0 && i < from) {
			continue
		}
		ring = append(ring, line)
		if n > 0 && len(ring) > n {
			ring = ring[1:]
		}
	}
	for _, line := range ring {
		t.print(line)
	}
	return t.out.Flush()
}

// lastOf is last for the last n (> 0) lines of f, read backwards from its
// end, a block at a time, so that its cost is that of the lines shown,
// not of the ledger; f is left at its end, for follow.
func (t *tailer) lastOf(f *mailbox.LedgerReader, n int) error {
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("read ledger: %w", err)
	}
	const block = 64 << 10
	var tail []byte
	at := end
	// Enough when the bytes read hold n+1 newlines (the last line may be
	// a partial one), or reach the file's start.
	for at > 0 && bytes.Count(tail, []byte("\n")) <= n {
		k := min(block, at)
		buf := make([]byte, k, int64(len(tail))+k)
		if _, err := f.ReadAt(buf, at-k); err != nil {
			return fmt.Errorf("read ledger: %w", err)
		}
		tail = append(buf, tail...)
		at -= k
	}
	complete := tail[:bytes.LastIndexByte(tail, '\n')+1]
	t.partial = append([]byte(nil), tail[len(complete):]...)
	var ring [][]byte
	for len(complete) > 0 {
		i := bytes.IndexByte(complete, '\n')
		ring = append(ring, complete[:i+1])
		complete = complete[i+1:]
	}
	if at > 0 && len(ring) > 0 {
		ring = ring[1:] // may have begun before the bytes read
	}
	if len(ring) > n {
		ring = ring[len(ring)-n:]
	}
	for _, line := range ring {
		t.print(line)
	}
	return t.out.Flush()
}

// colors by event, for a terminal.
var eventColor = map[string]string{"delivered": "\x1b[36m", "decision": "\x1b[33m", "rejected": "\x1b[31m",
	"bounced": "\x1b[31m", "failed": "\x1b[31m", "paused": "\x1b[1;31m", "resumed": "\x1b[32m"}

// follow prints lines as they are appended to f, until ctx ends. File
// events are hints: a slow timer reads on too (after a seal, the live file
// watched is no longer the one appended to until it is watched again).
func (t *tailer) follow(ctx context.Context, f *mailbox.LedgerReader) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("follow ledger: %w", err)
	}
	defer w.Close()
	if err := w.Add(f.Name()); err != nil {
		return fmt.Errorf("follow ledger: %w", err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	buf := make([]byte, 1<<16)
	for {
		sealed := f.Segments()
		for {
			n, err := f.Read(buf)
			t.partial = append(t.partial, buf[:n]...)
			if err == io.EOF || n == 0 {
				break
			}
			if err != nil {
				return fmt.Errorf("follow ledger: %w", err)
			}
		}
		if f.Segments() != sealed {
			_ = w.Remove(f.Name())
			if err := w.Add(f.Name()); err != nil {
				return fmt.Errorf("follow ledger: %w", err)
			}
		}
		for {
			i := bytes.IndexByte(t.partial, '\n')
			if i < 0 {
				break
			}
			t.print(t.partial[:i+1])
			t.partial = t.partial[i+1:]
		}
		if err := t.out.Flush(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.Events:
		case err := <-w.Errors:
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				return fmt.Errorf("follow ledger: %w", err)
			}
		case <-tick.C:
		}
	}
}

func (t *tailer) print(line []byte) {
	var e mailbox.Entry
	if err := json.Unmarshal(line, &e); err != nil {
		if !t.json { // JSON output stays JSON: parley ledger verify names the bad line
			fmt.Fprintf(t.out, "?  (not a ledger entry: %s)\n", strings.TrimSpace(string(line)))
		}
		return
	}
	if !t.wants(e) {
		return
	}
	if t.json {
		t.out.Write(line)
		return
	}
	s := formatEntry(e, t.now())
	if c, ok := eventColor[e.Event]; ok && t.color {
		s = c + s + "\x1b[0m"
	}
	t.out.WriteString(s)
	t.out.WriteByte('\n')
}

// formatEntry writes an entry as one line for people.
func formatEntry(e mailbox.Entry, now time.Time) string {
	when := e.Time.Local().Format("15:04:05")
	if y, m, d := e.Time.Local().Date(); y != now.Local().Year() || m != now.Local().Month() || d != now.Local().Day() {
		when = e.Time.Local().Format("Jan 02 15:04")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%5d  %-12s  %-12s %-10s", e.Seq, when, e.Agent, e.Event)
	if e.Verb != "" {
		fmt.Fprintf(&b, " %-9s", e.Verb)
	}
	if e.From != "" || e.To != "" {
		fmt.Fprintf(&b, " %s → %s", e.From, e.To)
	}
	if e.Amount != "" {
		fmt.Fprintf(&b, "  %s %s", e.Amount, e.Currency)
	}
	if e.Thread != "" {
		fmt.Fprintf(&b, "  [%s]", e.Thread)
	}
	if e.Decision != "" {
		fmt.Fprintf(&b, "  %s by %s", e.Decision, e.Rule)
	}
	if e.Event == mailbox.EventRejected || e.Event == mailbox.EventBounced {
		fmt.Fprintf(&b, "  %s", e.File)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, "  — %s", oneLine(e.Reason))
	}
	return strings.TrimRight(b.String(), " ")
}
