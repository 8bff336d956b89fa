package main

import (
	"bufio"
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/mailbox"
)

// statusView is what status shows of the ledger, folded line by line:
// each agent's last line, the threads still open, the model use. It is
// kept as a checkpoint (ROOT/.parley/checkpoint/status.view, with the
// position of its last line) so that status reads only the lines after;
// one whose line the ledger no longer has is ignored and rebuilt, as
// every checkpoint (docs/MAILBOX.md, "A ledger of years").
type statusView struct {
	Version int
	At      mailbox.Position
	Last    map[string]mailbox.Entry // by agent
	Open    map[string]mailbox.Entry // by thread: its last delivery, a deal not ended
	Uses    map[string]*modelUse     // by agent
	// Ended is, by thread, when the message that ended a deal was sent (its
	// Date): on JetStream a sender's delivery line can land after its
	// receiver's lines, and an earlier message recorded after the end must
	// not open the deal again. A deal ended endedFor before the newest line
	// is forgotten, so the view does not grow with history.
	Ended map[string]time.Time
}

// endedFor is how long an ended deal is remembered against late lines: a
// delivery line lands within moments of its message.
const endedFor = time.Hour

// statusViewFile is the status view's checkpoint, under
// mailbox.CheckpointDir; statusViewVersion changes with what it holds.
const (
	statusViewFile    = "status.view"
	statusViewVersion = 2
	statusViewEvery   = 1000 // lines read after which a new one is written
)

func newStatusView() *statusView {
	return &statusView{Version: statusViewVersion, Last: map[string]mailbox.Entry{}, Open: map[string]mailbox.Entry{}, Uses: map[string]*modelUse{},
		Ended: map[string]time.Time{}}
}

// add folds one ledger line in.
func (v *statusView) add(x mailbox.Entry) {
	v.Last[x.Agent] = x
	if x.Event == mailbox.EventDelivered && x.Thread != "" {
		sent := x.Date
		if sent.IsZero() {
			sent = x.Time // a ledger written before lines had dates
		}
		ended, wasEnded := v.Ended[x.Thread]
		switch mailbox.Verb(x.Verb) {
		case mailbox.Notify, mailbox.Paid, mailbox.Error, mailbox.Denied:
			delete(v.Open, x.Thread)
			if sent.After(ended) {
				v.Ended[x.Thread] = sent
			}
		default:
			if wasEnded && !sent.After(ended) {
				break // sent before the deal ended, recorded after it
			}
			v.Open[x.Thread] = x
			delete(v.Ended, x.Thread)
		}
		if len(v.Ended) > 64 {
			for th, at := range v.Ended {
				if x.Time.Sub(at) > endedFor {
					delete(v.Ended, th)
				}
			}
		}
	}
	if x.Event != agents.EventLLM {
		return
	}
	u := v.Uses[x.Agent]
	if u == nil {
		u = &modelUse{}
		v.Uses[x.Agent] = u
	}
	u.add(x)
}

// readStatusView is the view of the ledger at path: from its checkpoint
// under root when the ledger still has the checkpoint's line, else from
// the first line; written back when it read statusViewEvery lines or more.
func readStatusView(root, path string) (*statusView, error) {
	v := loadStatusView(root)
	f, err := mailbox.OpenLedgerReader(path)
	if errors.Is(err, os.ErrNotExist) {
		return newStatusView(), nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ok, size, err := f.CheckPosition(v.At)
	if err != nil {
		return nil, err
	}
	if !ok {
		v = newStatusView()
	}
	from := v.At
	var last mailbox.Entry
	n := 0
	err = mailbox.ReadEntries(io.NewSectionReader(f, from.Offset, size-from.Offset), func(_ int, x mailbox.Entry) error {
		v.add(x)
		last = x
		n++
		return nil
	})
	torn := errors.Is(err, mailbox.ErrTornTail)
	if err != nil && !torn {
		return nil, withHint(fmt.Errorf("%s: %w", path, err), "parley ledger verify names the first bad line")
	}
	if n >= statusViewEvery && !torn {
		v.At = mailbox.Position{Seq: last.Seq, Hash: last.Hash, Offset: size}
		var buf bytes.Buffer
		if gob.NewEncoder(&buf).Encode(v) == nil {
			_ = mailbox.WriteCheckpoint(root, statusViewFile, buf.Bytes()) // a cache: the next status reads more
		}
	}
	return v, nil
}

// loadStatusView reads the checkpoint; an empty view when there is none
// to use.
func loadStatusView(root string) *statusView {
	f, err := os.Open(filepath.Join(root, mailbox.CheckpointDir, statusViewFile))
	if err != nil {
		return newStatusView()
	}
	defer f.Close()
	v := newStatusView()
	if err := gob.NewDecoder(bufio.NewReader(f)).Decode(v); err != nil || v.Version != statusViewVersion {
		return newStatusView()
	}
	return v
}

// add takes in one llm line. A call played from its tape (a step taken
// again after a restart) cost nothing.
func (u *modelUse) add(x mailbox.Entry) {
	if x.File != "" && !strings.Contains(x.Reason, "played from its tape") {
		u.Calls++
		u.Tokens += x.Tokens
		if x.Millis > 0 {
			if len(u.Took) == recentCalls {
				u.Took = append(u.Took[:0], u.Took[1:]...)
			}
			u.Took = append(u.Took, x.Millis)
		}
	}
	switch x.Decision {
	case agents.Refused:
		u.Refused++
	case agents.FellBack, agents.Escalated:
		u.Fallbacks++
	}
}

// recentCalls is how many of an agent's latest calls its median and
// slowest are of: how long a call takes now, in a view that does not grow
// with history.
const recentCalls = 1000

// figures sets the median and the slowest of the recent calls.
func (u *modelUse) figures() {
	if len(u.Took) > 0 {
		took := slices.Clone(u.Took)
		slices.Sort(took)
		u.MedianMS, u.SlowestMS = took[len(took)/2], took[len(took)-1]
	}
}
