package agents

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"golang.org/x/sys/unix"
)

// maxBackoff is the longest an agent waits between two tries while the
// disk is full or failing.
const maxBackoff = 30 * time.Second

// diskTrouble says whether err is a full or failing disk: a state to wait
// out, not a reason to exit (RELIABILITY.md 14).
func diskTrouble(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) || errors.Is(err, unix.EIO)
}

// waitOut takes a step that failed on a full or failing disk, or on a
// ledger that does not verify, as a state: the message in hand (c, when
// there is one) stays claimed and is taken again, whole, at a later tick;
// the state goes back to what was saved; nothing more is claimed
// meanwhile. On a full disk the ticks back off, from one to maxBackoff; a
// ledger that does not verify has paused the team (the engine wrote
// PAUSED), and nothing is decided or appended until a person mends it and
// resumes. Any other error is returned, as before.
func (rt *Runtime) waitOut(err error, c *mailbox.Claimed) error {
	if errors.Is(err, mailbox.ErrBroken) {
		if said := err.Error(); said != rt.brokenSaid {
			rt.Log("the ledger does not verify, so nothing is done until a person mends it (parley ledger verify): " + said)
			rt.brokenSaid = said
		}
		if c != nil && !slices.Contains(rt.later, c) {
			rt.later = append(rt.later, c)
		}
		return rt.reset()
	}
	if !diskTrouble(err) {
		return err
	}
	if rt.trouble.IsZero() {
		rt.trouble, rt.backoff = time.Now(), rt.Every
	} else {
		rt.backoff = min(2*rt.backoff, maxBackoff)
	}
	// Said where parley status reads the agent's heartbeat; best effort.
	_ = SayTrouble(rt.Root.Inbox(rt.Name).Path("state", "lock"),
		fmt.Sprintf("disk full or failing since %s: %v", rt.trouble.UTC().Format(time.RFC3339), err))
	if c != nil && !slices.Contains(rt.later, c) {
		rt.later = append(rt.later, c)
	}
	rt.Log(fmt.Sprintf("disk full or failing since %s: %v; what is claimed stays claimed, trying again in %v",
		rt.trouble.Format(time.TimeOnly), err, rt.backoff))
	return rt.reset()
}

// recovered ends the waiting once a step went through.
func (rt *Runtime) recovered() {
	if rt.trouble.IsZero() {
		return
	}
	// The heartbeat first, then the log: whoever reads the log's word
	// finds the heartbeat saying it too.
	_ = SayTrouble(rt.Root.Inbox(rt.Name).Path("state", "lock"), "")
	rt.Log(fmt.Sprintf("the disk is back after %v: going on", time.Since(rt.trouble).Round(time.Second)))
	rt.trouble, rt.backoff = time.Time{}, 0
}
