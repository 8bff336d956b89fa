package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/natstest"
	"github.com/parley-dev/parley/mailbox"
)

// TestJetStreamSoak runs deals on one JetStream team of twenty vendors,
// every agent its own process, against a server process of its own: first
// back to back, then all started at once (PARLEY_SOAK=B,C: 10,10 here;
// make soak: 2000,500). Every deal finishes with exactly one order and one
// payment; the server's consumers do not grow with the deals (every long
// read's consumer is deleted when done, the inboxes' durable ones reused),
// nor does its memory past warm-up beyond a margin.
func TestJetStreamSoak(t *testing.T) {
	back, once := 10, 10
	if spec := os.Getenv("PARLEY_SOAK"); spec != "" {
		a, b, _ := strings.Cut(spec, ",")
		back, _ = strconv.Atoi(a)
		once, _ = strconv.Atoi(b)
	}
	bin := parleyBin(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := natstest.StartProcess(t, exe)
	root, r := natsRoot(t, bin, s.URL()+"?stream=SOAK&claim=10s")
	// Twenty vendors; a policy that lets the deals run unattended: no
	// sign-off, no budget or rate that binds (the soak is of the transport).
	team := filepath.Join(root, "parley.toml")
	data, _ := os.ReadFile(team)
	var more bytes.Buffer
	for i := 0; i < 17; i++ {
		fmt.Fprintf(&more, "\n[[agent]]\nname = \"vendor-%c\"\nrole = \"vendor\"\nbrain = \"rules\"\nitem = \"widget\"\nlist_price = \"%d.%02d USD\"\nfloor = \"5.20 USD\"\ncapacity = 5000\nlead_days = 2\nstyle = \"linear\"\n",
			'd'+i, 5+(i+3)/10, 30+((i*7)%60))
	}
	data = bytes.Replace(data, []byte("\n[[agent]]\nname = \"finance\""), append(more.Bytes(), []byte("\n[[agent]]\nname = \"finance\"")...), 1)
	data = regexp.MustCompile(`rounds = 12 [^\n]*`).ReplaceAll(data, []byte("rounds = 0"))
	os.WriteFile(team, data, 0o644)
	unattended(t, root)
	if out, err := exec.Command(bin, "--root", root, "init").CombinedOutput(); err != nil { // the new vendors' folders and keys
		t.Fatalf("init: %v\n%s", err, out)
	}
	names := []string{"inventory", "procurement", "finance"}
	for i := 0; i < 20; i++ {
		names = append(names, fmt.Sprintf("vendor-%c", 'a'+i))
	}
	logs := &lineLog{limit: 1 << 20}
	procs := map[string]*exec.Cmd{}
	for _, n := range names {
		procs[n] = startAgent(t, bin, root, n, logs)
	}
	defer stopAgents(procs)

	deal := func(i int) {
		msg := filepath.Join(t.TempDir(), fmt.Sprintf("soak-%d.msg", i))
		os.WriteFile(msg, []byte(fmt.Sprintf("From: inventory\nTo: procurement\nThread: soak-%d\nVerb: REQUEST\nItem: widget\nQuantity: 500\nDeliver-By: %s\nSubject: need 500 widget\n",
			i, time.Now().AddDate(0, 0, 8).Format(time.DateOnly))), 0o644)
		if out, err := exec.Command(bin, "--root", root, "send", msg).CombinedOutput(); err != nil {
			t.Fatalf("send deal %d: %v\n%s", i, err, out)
		}
	}
	paid := func(n int) func([]mailbox.Entry) bool {
		return func(es []mailbox.Entry) bool { return count(es, "decision", "PAID", "allow") >= n && settled(es) }
	}
	consumersNow := func() int {
		n := 0
		for _, stream := range []string{"SOAK_INBOX", "SOAK_LEDGER"} {
			info, err := natstest.StreamOf(t, s.URL(), stream)
			if err != nil {
				t.Fatal(err)
			}
			n += info.State.Consumers
		}
		return n
	}
	// A long read's ordered consumer lives while the read does: the
	// server's lasting consumers are the fewest seen within a second.
	consumers := func() int {
		fewest := -1
		for deadline := time.Now().Add(time.Second); fewest < 0 || time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if n := consumersNow(); fewest < 0 || n < fewest {
				fewest = n
			}
		}
		return fewest
	}
	var warm, warmRSS int
	for i := 1; i <= back; i++ {
		deal(i)
		awaitRoot(t, r, 2*time.Minute, paid(i), logs)
		if i == min(5, back) {
			warm, warmRSS = consumers(), s.RSS()
		}
	}
	for i := back + 1; i <= back+once; i++ {
		deal(i)
	}
	es := awaitRoot(t, r, 10*time.Minute, paid(back+once), logs)
	after, rss := consumers(), s.RSS()
	t.Logf("%d deals back to back, %d at once: consumers %d after warm-up, %d at the end; server memory %d kB, then %d kB", back, once, warm, after, warmRSS, rss)
	perThread := map[string][2]int{}
	for _, e := range es {
		if e.Event == "decision" && e.Decision == "allow" && (e.Verb == "ORDER" || e.Verb == "PAID") {
			c := perThread[e.Thread]
			c[map[string]int{"ORDER": 0, "PAID": 1}[e.Verb]]++
			perThread[e.Thread] = c
		}
	}
	for i := 1; i <= back+once; i++ {
		if c := perThread[fmt.Sprintf("soak-%d", i)]; c != [2]int{1, 1} {
			t.Errorf("deal soak-%d: %d orders and %d payments, want 1 and 1", i, c[0], c[1])
		}
	}
	if after > warm {
		t.Errorf("the server's consumers grew from %d after warm-up to %d", warm, after)
	}
	if warmRSS > 0 && rss > 2*warmRSS+64<<10 {
		t.Errorf("the server's memory grew from %d kB after warm-up to %d kB", warmRSS, rss)
	}
}
