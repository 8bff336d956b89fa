package sim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
)

// Keeper writes a scenario's run as a real root — its team and policy
// files, a Maildir per agent with every message each got (handled, in
// cur/; the human's in new/, for a person), and the ledger — for
// parley status, thread, why, ledger verify and the rest.
type Keeper struct {
	root *mailbox.Root
	now  time.Time
	err  error
}

// Keep creates the root dir for scenario s; dir must not exist yet.
func Keep(dir string, s *agents.Scenario) (*Keeper, error) {
	if _, err := os.Stat(dir); err == nil {
		return nil, fmt.Errorf("keep %s: it exists; give a new folder", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("keep: %w", err)
	}
	played := *s
	played.Buyer.MaxUnitPrice = s.Ceiling() // what procurement ran with
	for name, data := range map[string][]byte{agents.TeamFile: played.TeamFile(), policy.File: s.PolicyFile()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return nil, fmt.Errorf("keep: %w", err)
		}
	}
	k := &Keeper{now: Start}
	r, err := mailbox.OpenRoot(dir, func() time.Time { return k.now })
	if err != nil {
		return nil, err
	}
	for _, a := range Team(s).Agents {
		if err := r.Inbox(a.Name).Create(); err != nil {
			r.Close()
			return nil, err
		}
	}
	k.root = r
	return k, nil
}

// Record is an Options.Keep: it writes each entry and message as the live
// run would have.
func (k *Keeper) Record(e mailbox.Entry, m *mailbox.Message) {
	if k.err != nil {
		return
	}
	k.now = e.Time
	switch {
	case e.Event == mailbox.EventDelivered && m != nil:
		name, err := k.root.Deliver(e.Agent, m)
		if err == nil && m.To != "human" {
			var c *mailbox.Claimed
			if c, err = k.root.Claim(m.To, name); err == nil {
				err = k.root.Finish(c, mailbox.FlagDone, "")
			}
		}
		k.err = err
	default:
		l, err := k.root.Ledger()
		if err == nil {
			_, err = l.Append(e)
		}
		k.err = err
	}
}

// Close finishes the root, and says what went wrong while writing it.
func (k *Keeper) Close() error {
	return errors.Join(k.err, k.root.Close())
}
