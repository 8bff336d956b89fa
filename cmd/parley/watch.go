package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/mailbox"
	"github.com/urfave/cli/v2"
)

func watchCommand() *cli.Command {
	return &cli.Command{
		Name:      "watch",
		Usage:     "take in hand-written files from drop folders and show messages as they arrive",
		ArgsUsage: "[NAME...]",
		Description: `For each agent named (all of the root's agents by default), takes in the
files that people save into ROOT/NAME/drop/ from any editor — once a file is
complete and left alone — checks them, and delivers them into NAME's inbox;
a file that is not a valid message moves to ROOT/NAME/rejected/ with a .err
beside it that says what to fix. It also prints each message that arrives in
those inboxes. It claims nothing: the agents do that. Runs until Ctrl-C.

A file in a drop folder may leave out what parley send fills in, and To
(the folder's agent) and From (the human of parley.toml).

An unsigned file moves no money (the policy's [[unsigned]] rules): send an
APPROVED with parley approve or parley send, which sign it.

Example:
   parley watch human finance
   # in another terminal:
   printf 'Verb: NOTIFY\nSubject: the widget budget is fine\n\nGo ahead.\n' > mailboxes/finance/drop/note`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "settle", Value: 500 * time.Millisecond, Usage: "how long a dropped file must be left alone before it is taken"},
		},
		Action: func(c *cli.Context) error {
			e, err := open(c)
			if err != nil {
				return err
			}
			defer e.close()
			names := c.Args().Slice()
			if len(names) == 0 {
				if names, err = e.root.Agents(); err != nil {
					return err
				}
			}
			for _, n := range names {
				if err := e.agent(n); err != nil {
					return err
				}
			}
			human, notify := "human", ""
			if team, err := e.team(); err == nil {
				human, notify = team.Human, team.NotifyCommand
			}
			return e.watch(c.Context, names, human, notify, c.Duration("settle"))
		},
	}
}

func (e *env) watch(ctx context.Context, names []string, human, notify string, settle time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex // one printer
		wg   sync.WaitGroup
		errs = make(chan error, 2*len(names))
	)
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(e.stdout, "%s  "+format+"\n", append([]any{e.now().Local().Format("15:04:05")}, args...)...)
	}
	for _, name := range names {
		in := agents.PolicyIntake(e.root, name, human)
		defer in.Close()
		in.Settle = settle
		in.Taken = func(file string, m *mailbox.Message, err error) {
			rel := filepath.Join(name, "drop", filepath.Base(file))
			if err != nil {
				say("rejected %s: %s (the file and a .err are in %s)", rel, oneLine(err.Error()), filepath.Join(name, "rejected"))
				return
			}
			say("took in %s: %s from %s to %s", rel, m.Verb, m.From, m.To)
		}
		w, err := mailbox.Watch(e.root.Inbox(name).Path("new"), mailbox.WatchOptions{})
		if err != nil {
			return err
		}
		if w.Warning() != "" {
			fmt.Fprintf(e.stderr, "parley: warning: %s\n", w.Warning())
		}
		wg.Add(2)
		go func() { defer wg.Done(); errs <- in.Run(ctx) }()
		cmd := ""
		if name == human {
			cmd = notify
		}
		go func() { defer wg.Done(); defer w.Close(); errs <- e.show(ctx, w, name, cmd, say) }()
		if name == human && e.root.Transport != nil {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- e.bringEvery(ctx, human, 250*time.Millisecond) }()
		}
	}
	say("watching %d inboxes and their drop folders; Ctrl-C stops", len(names))
	var first error
	go func() { wg.Wait(); close(errs) }()
	for err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// bringEvery brings what waits for agent on the transport into its
// Maildir, every so often, until ctx ends: the watch shows it from there.
func (e *env) bringEvery(ctx context.Context, agent string, every time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	said := "" // an error is said once, not at every try while it lasts
	for {
		_, err := e.root.Bring(agent)
		if err != nil && err.Error() != said {
			fmt.Fprintf(e.stderr, "parley: %v\n", err)
		}
		said = ""
		if err != nil {
			said = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// show prints each message that arrives in name's new/, once, and runs
// the notify command for it when there is one.
func (e *env) show(ctx context.Context, w *mailbox.Watcher, name, notify string, say func(string, ...any)) error {
	seen := map[string]bool{}
	var running sync.WaitGroup // notify commands run beside the watch, never holding it up
	defer running.Wait()
	return w.Each(ctx, func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		path := e.root.Inbox(name).Path("new", n)
		data, err := mailbox.ReadMessageFile(path, e.root.MaxMessageSize)
		if errors.Is(err, mailbox.ErrStranger) {
			say("%s ← %s, which is not a message file: %v (its agent sets it aside)", name, n, err)
			return
		}
		if err != nil {
			return // claimed already
		}
		m, err := mailbox.Parse(data)
		if err != nil {
			say("%s ← %s, which is not a valid message: %s", name, n, oneLine(err.Error()))
			return
		}
		say("%s ← %s from %s: %s", name, m.Verb, m.From, m.Subject)
		if notify != "" {
			running.Add(1)
			go func() {
				defer running.Done()
				if err := runNotify(ctx, notify, path, data, m); err != nil {
					say("notify_command: %v", err)
				}
			}()
		}
	})
}

// runNotify runs the user's notify command for one message, for at most
// 30 seconds.
func runNotify(ctx context.Context, command, path string, data []byte, m *mailbox.Message) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.WaitDelay = 2 * time.Second // a background child that keeps the output open does not hold us
	cmd.Stdin = bytes.NewReader(data)
	cmd.Env = append(os.Environ(), "PARLEY_FROM="+m.From, "PARLEY_TO="+m.To, "PARLEY_VERB="+string(m.Verb),
		"PARLEY_SUBJECT="+m.Subject, "PARLEY_THREAD="+m.Thread, "PARLEY_AMOUNT="+m.Total().String(),
		"PARLEY_MSG_ID="+m.ID, "PARLEY_FILE="+path)
	out := &lineLog{limit: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, oneLine(out.String()))
	}
	return nil
}
