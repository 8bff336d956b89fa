// Package ledgergen writes ledgers as long as a benchmark needs, made of
// real deals: every line is one a real run of parley wrote (deal.jsonl, a
// copy of testdata/deal/ledger.jsonl: the restock story through separate
// processes), and the lines are chained and hashed by mailbox.Chain, so
// that the result verifies and reads as a root's history would.
//
// Invariants: the output is a valid ledger (parley ledger verify passes it)
// of exactly Options.Lines lines; deal k (from 1) is the template's deal on
// thread restock-gadget-K, every message id, idempotency key and file name
// made its own, its times shifted so that the deals are evenly spaced and
// the last one ends at Options.Until. A ledger cut short at N lines ends in
// the middle of a deal, as a live one does.
package ledgergen

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/parley-dev/parley/mailbox"
)

//go:embed deal.jsonl
var dealJSONL []byte

// Options say what to write.
type Options struct {
	Lines  int       // how many lines in all
	Until  time.Time // when the last deal starts (zero: 40 days ago, outside this month's budget)
	PerDay int       // deals a day (0: 100, the busy team)
}

// template is the recorded deal, decoded once.
func template() ([]mailbox.Entry, error) {
	var es []mailbox.Entry
	err := mailbox.ReadEntries(bytes.NewReader(dealJSONL), func(_ int, e mailbox.Entry) error {
		es = append(es, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledgergen: read the template deal: %w", err)
	}
	return es, nil
}

// Write writes a ledger of opt.Lines lines to w and returns its head: the
// seq and hash of its last line.
func Write(w io.Writer, opt Options) (mailbox.Head, error) {
	tmpl, err := template()
	if err != nil {
		return mailbox.Head{}, err
	}
	perDay := opt.PerDay
	if perDay <= 0 {
		perDay = 100
	}
	until := opt.Until
	if until.IsZero() {
		until = time.Now().UTC().Add(-40 * 24 * time.Hour)
	}
	deals := (opt.Lines + len(tmpl) - 1) / len(tmpl)
	every := 24 * time.Hour / time.Duration(perDay)
	first := until.Add(-time.Duration(deals-1) * every)
	t0 := tmpl[0].Time
	thread0 := tmpl[0].Thread

	bw := bufio.NewWriterSize(w, 1<<20)
	var head mailbox.Head
	seq, prev := uint64(0), ""
	batch := make([]mailbox.Entry, len(tmpl))
	for k := 1; int(seq) < opt.Lines; k++ {
		n := min(len(tmpl), opt.Lines-int(seq))
		base := first.Add(time.Duration(k-1) * every)
		thread := "restock-gadget-" + strconv.Itoa(k)
		tag := "g" + strconv.Itoa(k) + "."
		for i, e := range tmpl[:n] {
			e.Time = base.Add(e.Time.Sub(t0))
			if !e.Date.IsZero() {
				e.Date = base.Add(e.Date.Sub(t0))
			}
			if e.Thread == thread0 {
				e.Thread = thread
			}
			e.MsgID, e.InReplyTo, e.Key = own(e.MsgID, tag), own(e.InReplyTo, tag), own(e.Key, tag)
			if e.File != "" {
				i := strings.LastIndexByte(e.File, '/') + 1
				e.File = e.File[:i] + tag + marked(e.File[i:], e)
			}
			if strings.Contains(e.Reason, thread0) {
				e.Reason = strings.ReplaceAll(e.Reason, thread0, thread)
			}
			if strings.Contains(e.Subject, thread0) {
				e.Subject = strings.ReplaceAll(e.Subject, thread0, thread)
			}
			batch[i] = e
		}
		buf, out, err := mailbox.Chain(seq, prev, batch[:n], nil)
		if err != nil {
			return head, fmt.Errorf("ledgergen: deal %d: %w", k, err)
		}
		if _, err := bw.Write(buf); err != nil {
			return head, fmt.Errorf("ledgergen: write: %w", err)
		}
		last := out[len(out)-1]
		seq, prev = last.Seq, last.Hash
		head = mailbox.Head{Seq: seq, Hash: prev}
	}
	if err := bw.Flush(); err != nil {
		return head, fmt.Errorf("ledgergen: write: %w", err)
	}
	return head, nil
}

// own makes a message id "<x@parley>" (or an idempotency key, which is
// one) the deal's own: "<gK.x@parley>".
func own(id, tag string) string {
	if len(id) < 2 || id[0] != '<' {
		return id
	}
	return "<" + tag + id[1:]
}

// marked is a file name in cur/ as this version writes it, with parley's
// own mark (mailbox's ",parley=STATE" before the Maildir info): the
// recorded deal's lines predate marks, and an unmarked claim is what
// mailbox.ReadRecord must decode for an old root.
func marked(name string, e mailbox.Entry) string {
	i := strings.Index(name, ":2,")
	if i < 0 || strings.Contains(name, ",parley=") {
		return name
	}
	mark := "claimed"
	switch e.Event {
	case mailbox.EventDone:
		mark = "done"
		if strings.Contains(name[i+3:], "R") {
			mark = "answered"
		}
	case mailbox.EventFailed:
		mark = "failed"
	}
	return name[:i] + ",parley=" + mark + name[i:]
}
