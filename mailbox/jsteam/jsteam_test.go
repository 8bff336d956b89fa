package jsteam

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/natstest"
	"github.com/parley-dev/parley/mailbox"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func note(i int) *mailbox.Message {
	return &mailbox.Message{Version: "1", ID: fmt.Sprintf("<%d@test>", i), Date: t0, From: "procurement", To: "finance",
		Thread: "t", Verb: mailbox.Notify, Subject: "x"}
}

// TestServerRestart: a team's transport waits for its server to come back.
func TestServerRestart(t *testing.T) {
	s := natstest.Start(t)
	cfg, err := ParseURL(s.URL() + "?claim=2s&patience=20s")
	if err != nil {
		t.Fatal(err)
	}
	team, err := Dial(context.Background(), cfg, nil)
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

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Config
		err  string
	}{
		{in: "nats://127.0.0.1:4222", want: Config{Servers: "nats://127.0.0.1:4222", Stream: "PARLEY", Replicas: 1, Claim: 30 * time.Second, Patience: 2 * time.Minute, Dedupe: time.Hour}},
		{in: "nats://a:4222,nats://b:4222,nats://c:4222?replicas=3&claim=10s&stream=SHOP&patience=5m&dedupe=24h",
			want: Config{Servers: "nats://a:4222,nats://b:4222,nats://c:4222", Stream: "SHOP", Replicas: 3, Claim: 10 * time.Second, Patience: 5 * time.Minute, Dedupe: 24 * time.Hour}},
		{in: "tls://nats.example.com:4222", want: Config{Servers: "tls://nats.example.com:4222", Stream: "PARLEY", Replicas: 1, Claim: 30 * time.Second, Patience: 2 * time.Minute, Dedupe: time.Hour}},
		{in: "http://127.0.0.1:4222", err: `is not a server URL`},
		{in: "nats://", err: `is not a server URL`},
		{in: "nats://a:4222,b:4222", err: `"b:4222" is not a server URL`},
		{in: "nats://a:4222?replicas=9", err: `replicas=9: from 1 to 5`},
		{in: "nats://a:4222?replicas=x", err: `replicas=x`},
		{in: "nats://a:4222?claim=-1s", err: `claim=-1s: a duration above zero`},
		{in: "nats://a:4222?claim=soon", err: `claim=soon`},
		{in: "nats://a:4222?stream=a.b", err: `stream=a.b: letters, digits, - and _`},
		{in: "nats://a:4222?colour=blue", err: `colour=blue: not a setting`},
		{in: "nats://a:4222?%zz", err: `invalid URL escape`},
	} {
		got, err := ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseURL(%q) = %v; want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseURL: any setting is read or refused, never a panic, and what is
// read is within bounds.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"nats://127.0.0.1:4222", "nats://a:1,nats://b:2?replicas=3&claim=1s", "tls://h:4222?stream=X&dedupe=1h&patience=1m", "nats://a?%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseURL(s)
		if err != nil {
			return
		}
		if c.Replicas < 1 || c.Replicas > 5 || c.Claim <= 0 || c.Patience <= 0 || c.Dedupe <= 0 || !streamName.MatchString(c.Stream) || !IsURL(c.Servers) {
			t.Errorf("ParseURL(%q) = %+v", s, c)
		}
	})
}

// TestBringOnce: what waits for the human is moved into its Maildir; one
// brought there before a crash, and not yet taken off the stream, is not
// brought twice, even once the person has archived it.
func TestBringOnce(t *testing.T) {
	s := natstest.Start(t)
	cfg, _ := ParseURL(s.URL())
	team, err := Dial(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer team.Close()
	box := mailbox.Maildir{Dir: t.TempDir()}
	if err := box.Create(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		m := note(i)
		m.To = "human"
		if _, err := team.Put(m, m.Marshal(), t0); err != nil {
			t.Fatal(err)
		}
		if i == 1 { // brought before a crash, then archived
			name, err := box.Deliver(m.Marshal(), t0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := box.MoveToArchive(box.Path("new", name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := team.Bring("human", box, t0)
	if err != nil || n != 3 {
		t.Fatalf("Bring = %d, %v; want 3 taken off the stream", n, err)
	}
	ids, err := box.IDs() // by id: one file each
	if err != nil {
		t.Fatal(err)
	}
	files, _ := box.Pending()
	if len(ids) != 2 || len(files) != 2 {
		t.Errorf("%d messages in %d files, want 2 in 2 (and the archived one not again)", len(ids), len(files))
	}
	if n, err := team.Bring("human", box, t0); err != nil || n != 0 {
		t.Errorf("Bring again = %d, %v; want nothing left", n, err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                               "nats://127.0.0.1:4222",
		"nats://alice:s3cret@n1:4222,nats://bob:pw@n2:4222?x": "nats://***@n1:4222,nats://***@n2:4222?x",
		"tls://tok3n@nats.example.com:4222":                   "tls://***@nats.example.com:4222",
		"nats://alice:pa/ss?,x@h:4222,nats://b:p@ss@h2":       "nats://***@h:4222,nats://***@h2",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := ParseURL("nats://alice:s3cret@n1:4222?replicas=9"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestLease: one process holds an agent's name team-wide; another root is
// refused while the holder beats, takes it over once it does not, and the
// old holder learns it lost it and cannot give up the new holder's lease.
func TestLease(t *testing.T) {
	s := natstest.Start(t)
	cfg, _ := ParseURL(s.URL())
	team, err := Dial(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer team.Close()
	a := mailbox.Beat{Who: "1@a", Root: "a:/srv/parley"}
	b := mailbox.Beat{Who: "2@b", Root: "b:/srv/parley"}
	revA, err := team.Hold("finance", a, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var held *mailbox.HeldError
	if _, err := team.Hold("finance", b, time.Minute); !errors.As(err, &held) || held.By.Who != "1@a" {
		t.Fatalf("a second root while the first beats: %v, want held by 1@a", err)
	}
	if revA, err = team.Beat("finance", a, revA); err != nil {
		t.Fatal(err)
	}
	// A beat whose answer was lost (a cluster's leader changed): the next
	// beat comes with the revision before it, and finds its own beat there,
	// not a takeover.
	if _, err := team.Beat("finance", a, revA); err != nil {
		t.Fatal(err)
	}
	if revA, err = team.Beat("finance", a, revA); err != nil {
		t.Fatalf("a beat after one whose answer was lost: %v, want the lease kept", err)
	}
	// The holder falls silent longer than the lapse: taken over.
	revB, err := team.Hold("finance", b, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := team.Beat("finance", a, revA); !errors.Is(err, mailbox.ErrLost) {
		t.Errorf("the old holder's beat: %v, want ErrLost", err)
	}
	if err := team.Gone("finance", revA); err != nil {
		t.Fatal(err)
	}
	beats, err := team.Beats()
	if err != nil {
		t.Fatal(err)
	}
	if beats["finance"].Who != "2@b" {
		t.Errorf("after the old holder let go: %+v, want 2@b's lease kept", beats["finance"])
	}
	if err := team.Gone("finance", revB); err != nil {
		t.Fatal(err)
	}
	if beats, _ := team.Beats(); len(beats) != 0 {
		t.Errorf("after the holder let go: %+v", beats)
	}
	// The same root takes it at once (its lock file decides).
	if _, err := team.Hold("finance", a, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := team.Hold("finance", mailbox.Beat{Who: "3@a", Root: a.Root}, time.Minute); err != nil {
		t.Errorf("a restart in the same root: %v", err)
	}
}

// TestUnfinishedFirst: what a stopped process claimed and did not finish
// is handed to the next one at its start, before newer messages — as on
// files — without waiting for the stopped claim to lapse.
func TestUnfinishedFirst(t *testing.T) {
	s := natstest.Start(t)
	cfg, _ := ParseURL(s.URL() + "?claim=30s")
	dial := func() *Team {
		team, err := Dial(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return team
	}
	first := dial()
	for i := 1; i <= 2; i++ {
		m := note(i)
		if _, err := first.Put(m, m.Marshal(), t0); err != nil {
			t.Fatal(err)
		}
	}
	in, _ := first.Inbox("finance")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := in.Next(ctx); err != nil {
		t.Fatal(err)
	}
	first.Close() // the process dies with <1@test> claimed

	next := dial()
	defer next.Close()
	in, _ = next.Inbox("finance")
	defer in.Close()
	unfinished, err := in.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	if len(unfinished) != 1 || !strings.Contains(string(unfinished[0].Data), "<1@test>") {
		t.Fatalf("unfinished: %d, want <1@test> alone", len(unfinished))
	}
	if _, err := in.Finish(unfinished[0], mailbox.FlagDone, ""); err != nil {
		t.Fatal(err)
	}
	c, err := in.Next(ctx)
	if err != nil || !strings.Contains(string(c.Data), "<2@test>") {
		t.Fatalf("next: %v, want <2@test> while <1@test>'s old claim has not lapsed", err)
	}
}

// TestLeaseRace: processes of four roots start the same agent at once;
// exactly one of them gets to run it.
func TestLeaseRace(t *testing.T) {
	s := natstest.Start(t)
	cfg, _ := ParseURL(s.URL())
	const n = 4
	teams := make([]*Team, n)
	for i := range teams {
		team, err := Dial(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer team.Close()
		teams[i] = team
	}
	errs := make(chan error, n)
	start := make(chan struct{})
	for i, team := range teams {
		go func() {
			<-start
			_, err := team.Hold("finance", mailbox.Beat{Who: fmt.Sprintf("%d@h%d", i, i), Root: fmt.Sprintf("h%d:/srv/parley", i)}, time.Minute)
			errs <- err
		}()
	}
	close(start)
	won := 0
	for range n {
		err := <-errs
		var held *mailbox.HeldError
		switch {
		case err == nil:
			won++
		case !errors.As(err, &held):
			t.Errorf("refused with %v, want a HeldError", err)
		}
	}
	if won != 1 {
		t.Errorf("%d processes run the agent, want 1", won)
	}
}
