package mailbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// EventBridged is the ledger's record of a message that left its side of
// a bridge for the other; the other side's ledger records it delivered.
const EventBridged = "bridged"

// Bridge joins two roots of one team on different transports — a root on
// files on a laptop, and a team on NATS JetStream — so that their agents
// work together: what is sent here to an agent that runs there crosses to
// its inbox there, and back. Each message crosses once: it is put on the
// other side before its claim here ends, and put again after a crash under
// the same Message-ID, which the other side stores once (JetStream: within
// its dedupe window; a Maildir: in a file named from the id), and each
// ledger records once.
type Bridge struct {
	Here, There *Root
	// Remote are the agents that run there; every other agent of the
	// team runs here.
	Remote []string
	Local  []string
	// Log, when set, hears of each message that crossed, and of trouble.
	Log func(line string)

	// recorded are the crossings each side's ledger has, by root and
	// Message-ID: read at the start, so that a message crossing again
	// after a crash (a claim that lapsed, an acknowledgement lost) is
	// recorded once.
	mu       sync.Mutex
	recorded map[*Root]map[string]bool
}

// once keys the ledger's record of a message's crossing: its delivered
// line on the side it went to, its bridged line on the side it left.
func once(event, id string) string { return event + " " + id }

// crossings reads r's ledger for what crossed the bridge already. (Not
// through LedgerPath: the bridge's two roots share a folder, and the
// other side's copy of its ledger would be written over this side's.)
func crossings(r *Root) (map[string]bool, error) {
	seen := map[string]bool{}
	note := func(e Entry) {
		if e.Event == EventBridged || (e.Event == EventDelivered && strings.HasPrefix(e.Reason, "bridged from ")) {
			seen[once(e.Event, e.MsgID)] = true
		}
	}
	if r.Transport != nil {
		j, err := r.Journal()
		if err != nil {
			return nil, err
		}
		defer j.Close()
		_, err = j.Transact(func(news []Entry) ([]Entry, error) {
			for _, e := range news {
				note(e)
			}
			return nil, nil
		})
		return seen, err
	}
	path := filepath.Join(r.Dir, LedgerFile)
	f, err := OpenLedgerReader(path)
	if errors.Is(err, fs.ErrNotExist) {
		return seen, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	err = ReadSomeEntries(f, func(line []byte) bool { return bytes.Contains(line, []byte("bridged")) }, func(_ int, e Entry) error {
		note(e)
		return nil
	})
	if errors.Is(err, ErrTornTail) {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return seen, nil
}

// recordOnce records e on r unless r's ledger has it already.
func (b *Bridge) recordOnce(r *Root, e Entry) error {
	key := once(e.Event, e.MsgID)
	b.mu.Lock()
	done := b.recorded[r][key]
	b.mu.Unlock()
	if done {
		return nil
	}
	if err := r.record(e); err != nil {
		return err
	}
	b.mu.Lock()
	b.recorded[r][key] = true
	b.mu.Unlock()
	return nil
}

// Run moves messages both ways until ctx ends.
func (b *Bridge) Run(ctx context.Context) error {
	if b.Log == nil {
		b.Log = func(string) {}
	}
	b.recorded = map[*Root]map[string]bool{}
	for _, r := range []*Root{b.Here, b.There} {
		seen, err := crossings(r)
		if err != nil {
			return fmt.Errorf("bridge: %w", err)
		}
		b.recorded[r] = seen
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(b.Remote)+len(b.Local))
	cross := func(from, to *Root, agent string) {
		defer wg.Done()
		if err := b.cross(ctx, from, to, agent); err != nil {
			errs <- err
			cancel()
		}
	}
	for _, a := range b.Remote {
		wg.Add(1)
		go cross(b.Here, b.There, a)
	}
	for _, a := range b.Local {
		wg.Add(1)
		go cross(b.There, b.Here, a)
	}
	wg.Wait()
	close(errs)
	return errors.Join(<-errs) // the first failure; the rest followed from it
}

// cross moves every message that arrives for agent in from's inbox into
// its inbox in to, until ctx ends.
func (b *Bridge) cross(ctx context.Context, from, to *Root, agent string) error {
	in, err := from.transport().Inbox(agent)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", agent, err)
	}
	defer in.Close()
	unfinished, err := in.Unfinished()
	if err != nil {
		return fmt.Errorf("bridge %s: %w", agent, err)
	}
	for _, c := range unfinished {
		if err := b.move(from, to, in, c); err != nil {
			return err
		}
	}
	for {
		c, err := in.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			b.Log(fmt.Sprintf("bridge %s: %v", agent, err))
			select { // an error that lasts must not spin
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if err := b.move(from, to, in, c); err != nil {
			return err
		}
	}
}

// move puts one claimed message on the other side, records it on both,
// and ends the claim. A message that cannot be read is set aside here, as
// its agent would have.
func (b *Bridge) move(from, to *Root, in Inbox, c *Claimed) error {
	c.inbox = in
	if err := from.read(c); errors.Is(err, ErrRejected) {
		b.Log(err.Error())
		return nil
	} else if err != nil {
		return err
	}
	m := c.Message
	var where string
	var err error
	if p, ok := to.transport().(interface {
		PutOnce(*Message, []byte, time.Time) (string, bool, error)
	}); ok {
		where, _, err = p.PutOnce(m, c.Data, to.Now()) // a Maildir: once by its Message-ID
	} else {
		where, err = to.transport().Put(m, c.Data, to.Now()) // JetStream: stored once within its window
	}
	if err != nil {
		return fmt.Errorf("bridge %s to %s: %w", m.ID, m.To, err)
	}
	arrived := MessageEntry(m.From, EventDelivered, m)
	arrived.File, arrived.Reason = where, "bridged from "+c.Where
	if err := b.recordOnce(to, arrived); err != nil {
		return err
	}
	left := MessageEntry(m.From, EventBridged, m)
	left.File, left.Reason = c.Where, "bridged to "+where
	if err := b.recordOnce(from, left); err != nil {
		return err
	}
	if _, err := in.Finish(c, FlagDone, "bridged"); err != nil {
		return err
	}
	b.Log(fmt.Sprintf("%s %s from %s to %s: crossed", m.Verb, m.ID, m.From, m.To))
	return nil
}
