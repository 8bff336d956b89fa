package jsteam

import (
	"context"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/natstest"
	"github.com/parley-dev/parley/mailbox"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func note(i int) *mailbox.Message {
	return &mailbox.Message{Version: "1", ID: "<" + time.Duration(i).String() + "@test>", Date: t0, From: "procurement", To: "finance",
		Thread: "t", Verb: mailbox.Notify, Subject: "x"}
}

// TestServerRestart: a team's transport waits for its server to come back.
func TestServerRestart(t *testing.T) {
	s := natstest.Start(t)
	cfg, err := ParseURL(s.URL() + "?claim=2s&patience=20s")
	if err != nil {
		t.Fatal(err)
	}
	team, err := Dial(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer team.Close()
	m := note(1)
	if _, err := team.Put(m, m.Marshal(), t0); err != nil {
		t.Fatal(err)
	}
	j, _ := team.Journal()
	if _, err := j.Append(mailbox.Entry{Agent: "a", Event: "x"}); err != nil {
		t.Fatal(err)
	}
	in, _ := team.Inbox("finance")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := in.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Restart(t)
	start := time.Now()
	m = note(2)
	if _, err := team.Put(m, m.Marshal(), t0); err != nil {
		t.Fatal(err)
	}
	t.Logf("put after %v", time.Since(start))
	if _, err := j.Append(mailbox.Entry{Agent: "a", Event: "y"}); err != nil {
		t.Fatal(err)
	}
	t.Logf("append after %v", time.Since(start))
	if _, err := in.Finish(c, mailbox.FlagDone, ""); err != nil {
		t.Fatal(err)
	}
	t.Logf("finish after %v", time.Since(start))
	c, err = in.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("next after %v: %s", time.Since(start), c.Data)
}
