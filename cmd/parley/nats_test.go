package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parley-dev/parley/internal/natstest"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/mailbox/jsteam"
)

// natsRoot makes a root whose parley.toml puts the team on the JetStream
// server at url, and returns it open on that transport.
func natsRoot(t *testing.T, bin, url string) (string, *mailbox.Root) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command(bin, "--root", dir, "init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	return dir, onNATS(t, dir, url)
}

// onNATS puts the team of the root dir on the JetStream server at url (its
// parley.toml says so) and returns the root open on that transport.
func onNATS(t testing.TB, dir, url string) *mailbox.Root {
	t.Helper()
	team := filepath.Join(dir, "parley.toml")
	data, err := os.ReadFile(team)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("version = 1\n"), []byte("version = 1\ntransport = \""+url+"\"\n"), 1)
	if err := os.WriteFile(team, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := jsteam.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := jsteam.Dial(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := mailbox.OpenRoot(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Transport = tr
	t.Cleanup(func() { r.Close() })
	return r
}

// storedOnStream counts the messages of the stream by their Nats-Msg-Id.
func storedOnStream(t *testing.T, s *natstest.Server, stream string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := natstest.Connect(t, s).Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for got := uint64(0); got < info.State.Msgs; {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for m := range batch.Messages() {
			n[m.Headers().Get(jetstream.MsgIDHeader)]++
			k++
		}
		if k == 0 {
			t.Fatalf("read %d of the %d messages of %s", got, info.State.Msgs, stream)
		}
		got += uint64(k)
	}
	return n
}

// midDeal fails the test unless the deal has begun and is not paid yet.
func midDeal(t *testing.T, r *mailbox.Root) {
	t.Helper()
	es, err := readLedger(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 || dealDone(es) {
		t.Fatalf("not in the middle of the deal: %d lines, done %v", len(es), dealDone(es))
	}
}

// TestJetStreamDeal: the restock deal with every agent its own process on
// a JetStream team; nothing of it goes through the root's Maildirs.
func TestJetStreamDeal(t *testing.T) {
	bin := parleyBin(t)
	s := natstest.Start(t)
	root, r := natsRoot(t, bin, s.URL())
	_, logs := startDeal(t, bin, root)
	es := awaitRoot(t, r, time.Minute, dealDone, logs)
	checkOnce(t, r, es)
	for _, e := range es {
		if e.Event == mailbox.EventDelivered && !strings.HasPrefix(e.File, "parley.inbox.") {
			t.Errorf("seq %d: delivered to %s, want a JetStream subject", e.Seq, e.File)
		}
	}
	// Every message delivered is kept on the stream, signed by its sender;
	// one the ledger names and the stream lacks is missing.
	if n, err := r.VerifyDelivered(es); err != nil || n == 0 {
		t.Errorf("VerifyDelivered = %d, %v", n, err)
	}
	forged := append(es, mailbox.Entry{Seq: 9999, Event: mailbox.EventDelivered, MsgID: "<never@sent>", File: "parley.inbox.finance"})
	var ve *mailbox.VerifyError
	if _, err := r.VerifyDelivered(forged); !errors.As(err, &ve) || ve.Kind != "missing" || ve.Seq != 9999 {
		t.Errorf("a delivery the stream lacks: %v, want missing at seq 9999", err)
	}
	for _, n := range dealAgents {
		if left, _ := os.ReadDir(filepath.Join(root, n, "cur")); len(left) > 0 {
			t.Errorf("%s/cur holds %d files; on JetStream the Maildirs are not used", n, len(left))
		}
	}
}

// TestJetStreamCrashes kills -9 each agent in turn at a random moment of a
// deal on JetStream and starts it again: what it had claimed is claimed
// again when its claim lapses, and the deal completes with exactly one
// order and one payment.
func TestJetStreamCrashes(t *testing.T) {
	bin := parleyBin(t)
	s := natstest.Start(t)
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			// A stream of its own for each run, and claims that lapse fast.
			root, r := natsRoot(t, bin, fmt.Sprintf("%s?stream=CRASH%d&claim=1s", s.URL(), seed))
			procs, logs := startDeal(t, bin, root)
			for _, i := range rng.Perm(len(dealAgents)) {
				victim := dealAgents[i]
				awaitRootLines(r, victim, 1+rng.IntN(4), 2*time.Second)
				procs[victim].Process.Signal(syscall.SIGKILL)
				procs[victim].Wait()
				procs[victim] = startAgent(t, bin, root, victim, logs)
			}
			es := awaitRoot(t, r, time.Minute, dealDone, logs)
			checkOnce(t, r, es)
		})
	}
}

// TestJetStreamServerRestart stops the server in the middle of a deal and
// starts it again: the agents wait for it, and the deal completes once.
func TestJetStreamServerRestart(t *testing.T) {
	bin := parleyBin(t)
	s := natstest.Start(t)
	root, r := natsRoot(t, bin, s.URL()+"?claim=2s")
	procs, logs := startDeal(t, bin, root)
	awaitRootLines(r, "procurement", 3, 10*time.Second) // the quotes asked for
	midDeal(t, r)
	s.Stop()
	s.Restart(t)
	es := awaitRoot(t, r, time.Minute, dealDone, logs)
	checkOnce(t, r, es)
	stopAgents(procs) // while the server they use is up: it stops before the test's cleanups
}

// TestJetStreamCluster runs the deal on a three-server cluster, each
// stream kept on all three, and stops one server in the middle of it: the
// deal completes with exactly one order and one payment.
func TestJetStreamCluster(t *testing.T) {
	bin := parleyBin(t)
	servers := natstest.Cluster(t, 3)
	root, r := natsRoot(t, bin, natstest.URLs(servers)+"?replicas=3&claim=2s")
	_, logs := startDeal(t, bin, root)
	awaitRootLines(r, "procurement", 3, 10*time.Second)
	midDeal(t, r)
	// The server that leads the ledger's stream: the cluster must elect
	// another while the agents append.
	info, err := natstest.Stream(t, servers[1], "PARLEY_LEDGER")
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	for _, s := range servers {
		if s.Name() == info.Cluster.Leader {
			s.Stop()
			stopped = true
		}
	}
	if !stopped {
		t.Fatalf("no server leads the ledger's stream (leader %q)", info.Cluster.Leader)
	}
	es := awaitRoot(t, r, time.Minute, dealDone, logs)
	checkOnce(t, r, es)
}

// TestBridgeMixedTeam: the vendors run on a JetStream team, the rest of the
// team on files, joined by parley bridge, which is killed -9 mid-deal and
// started again. The deal completes with one order and one payment, and
// every message that crossed arrived on the other side exactly once.
func TestBridgeMixedTeam(t *testing.T) {
	bin := parleyBin(t)
	s := natstest.Start(t)
	url := s.URL() + "?claim=2s" // a claim of the killed bridge lapses soon
	files := filepath.Join(t.TempDir(), "laptop")
	if out, err := exec.Command(bin, "--root", files, "init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	// The server's root: the same team, policy and keys (a checkout of the
	// same repository, and the agents' private keys), on JetStream.
	server := filepath.Join(t.TempDir(), "server")
	if out, err := exec.Command("cp", "-a", files, server).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	// A checkout has no folder of the agents that run elsewhere (git keeps
	// no empty folder, and their keys stay on their machine).
	for _, n := range []string{"inventory", "procurement", "finance", "human"} {
		if err := os.RemoveAll(filepath.Join(server, n)); err != nil {
			t.Fatal(err)
		}
	}
	there := onNATS(t, server, url)
	here, err := mailbox.OpenRoot(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lineLog{}
	procs := map[string]*exec.Cmd{}
	remote := []string{"vendor-a", "vendor-b", "vendor-c"}
	for _, n := range dealAgents {
		root, transport := files, "files"
		if strings.HasPrefix(n, "vendor-") {
			root, transport = server, url
		}
		cmd := exec.Command(bin, "--root", root, "--transport", transport, "agent", n)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[n] = cmd
	}
	bridge := func() *exec.Cmd {
		cmd := exec.Command(bin, "--root", files, "bridge", "--there", url, "--remote", strings.Join(remote, ","))
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	procs["bridge"] = bridge()
	defer stopAgents(procs)
	lowerStock(t, files)
	// The bridge dies with messages on their way, again and again
	// (PARLEY_BRIDGE_KILLS, 3; make faults: 20), and comes back each time.
	kills := 3
	if n, err := strconv.Atoi(os.Getenv("PARLEY_BRIDGE_KILLS")); err == nil && n > 0 {
		kills = n
	}
	awaitRootLines(here, "procurement", 4, 10*time.Second)
	for i := 0; i < kills; i++ {
		if i > 0 {
			lines := ledgerLines(t, here) + ledgerLines(t, there)
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && ledgerLines(t, here)+ledgerLines(t, there) < lines+2; {
				time.Sleep(5 * time.Millisecond)
			}
		}
		procs["bridge"].Process.Signal(syscall.SIGKILL)
		procs["bridge"].Wait()
		procs["bridge"] = bridge()
	}

	es := awaitRoot(t, here, time.Minute, dealDone, logs)
	checkOnce(t, here, es)
	// The payment crosses last.
	away := awaitRoot(t, there, time.Minute, func(es []mailbox.Entry) bool {
		for _, e := range es {
			if e.Event == mailbox.EventDone && e.Agent == "vendor-b" && e.Verb == string(mailbox.Paid) {
				return true
			}
		}
		return false
	}, logs)
	// What left each side arrived on the other once: stored once on
	// JetStream (its duplicate window), one file in its agent's Maildir on
	// files (named from its Message-ID), handled once, and each crossing one
	// delivered line on the side it reached and one bridged line on the side
	// it left; and vendor-b was ordered from and paid once.
	stored := storedOnStream(t, s, "PARLEY_INBOX")
	handled := map[string]int{}
	// Each agent here records a message done after acting on it: wait for
	// the last of those lines.
	es = awaitRoot(t, here, time.Minute, func(es []mailbox.Entry) bool {
		clear(handled)
		for _, e := range es {
			if e.Event == mailbox.EventDone && e.Reason == "" {
				handled[e.MsgID]++
			}
		}
		for _, e := range away {
			if e.Event == mailbox.EventBridged && e.To != "human" && handled[e.MsgID] == 0 {
				return false
			}
		}
		return true
	}, logs)
	crossed := map[string]int{}
	for _, side := range []struct {
		name string
		left []mailbox.Entry
	}{{"files to JetStream", es}, {"JetStream to files", away}} {
		for _, e := range side.left {
			if e.Event != mailbox.EventBridged {
				continue
			}
			crossed[side.name]++
			switch {
			case side.name == "files to JetStream" && stored[e.MsgID] != 1:
				t.Errorf("%s: %s %s stored %d times", side.name, e.Verb, e.MsgID, stored[e.MsgID])
			case side.name == "JetStream to files" && e.To != "human" && handled[e.MsgID] != 1:
				t.Errorf("%s: %s %s handled %d times by %s", side.name, e.Verb, e.MsgID, handled[e.MsgID], e.To)
			}
		}
	}
	if len(crossed) != 2 {
		t.Errorf("crossed: %v, want both ways", crossed)
	}
	copies := map[string]int{} // Message-ID: files in the Maildirs here
	for _, n := range []string{"inventory", "procurement", "finance", "human"} {
		for _, sub := range []string{"new", "cur"} {
			dir := filepath.Join(files, n, sub)
			names, _ := os.ReadDir(dir)
			for _, f := range names {
				data, err := os.ReadFile(filepath.Join(dir, f.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if m, err := mailbox.Parse(data); err == nil {
					copies[m.ID]++
				}
			}
		}
	}
	lines := map[string]int{}
	for _, e := range es {
		if (e.Event == mailbox.EventDelivered && strings.HasPrefix(e.Reason, "bridged from ")) || e.Event == mailbox.EventBridged {
			lines[e.Event+" "+e.MsgID]++
		}
	}
	for _, e := range away {
		if (e.Event == mailbox.EventDelivered && strings.HasPrefix(e.Reason, "bridged from ")) || e.Event == mailbox.EventBridged {
			lines[e.Event+" "+e.MsgID]++
		}
	}
	for _, e := range away {
		if e.Event != mailbox.EventBridged {
			continue
		}
		if copies[e.MsgID] != 1 {
			t.Errorf("JetStream to files: %s %s lies in %d files of %s's Maildir", e.Verb, e.MsgID, copies[e.MsgID], e.To)
		}
	}
	for k, n := range lines {
		if n != 1 {
			t.Errorf("the ledgers record %q %d times", k, n)
		}
	}
	claims := map[string]int{}
	for _, e := range away {
		if e.Event == mailbox.EventClaimed && e.Agent == "vendor-b" {
			claims[e.Verb]++
		}
	}
	if claims["ORDER"] != 1 || claims["PAID"] != 1 {
		t.Errorf("vendor-b claimed %d orders and %d payments on JetStream, want 1 and 1", claims["ORDER"], claims["PAID"])
	}
}

// ledgerLines is how many lines r's ledger has.
func ledgerLines(t *testing.T, r *mailbox.Root) int {
	es, err := readLedger(r)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestJetStreamServerKilled kills -9 the server process in the middle of
// deals — at a random moment of each (seeded), a deal a stream of its own,
// PARLEY_SERVER_KILLS deals (5; make faults: 20) — and
// starts it again on its port and its store, as an operator would: no
// agent exits or hangs, and every deal completes with exactly one order
// and one payment. (nats-server's file store may lose what it had not
// synced when its process dies; its host did not, so nothing is lost.)
func TestJetStreamServerKilled(t *testing.T) {
	bin := parleyBin(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := natstest.StartProcess(t, exe)
	kills := 5 // in make test; make faults kills it 20 times
	if n, err := strconv.Atoi(os.Getenv("PARLEY_SERVER_KILLS")); err == nil && n > 0 {
		kills = n
	}
	rng := rand.New(rand.NewPCG(23, 9))
	for i := 1; i <= kills; i++ {
		t.Run(fmt.Sprint("kill", i), func(t *testing.T) {
			root, r := natsRoot(t, bin, fmt.Sprintf("%s?stream=KILL%d&claim=2s", s.URL(), i))
			procs, logs := startDeal(t, bin, root)
			awaitRootLines(r, "procurement", 1+rng.IntN(12), 10*time.Second)
			s.Kill()
			s.Start(t)
			es := awaitRoot(t, r, time.Minute, dealDone, logs)
			checkOnce(t, r, es)
			for n, p := range procs {
				if !alive(strconv.Itoa(p.Process.Pid)) {
					t.Errorf("%s exited; the agents said:\n%s", n, logs.String())
				}
			}
			stopAgents(procs) // while the server is up
		})
	}
}

// TestJetStreamTakeover kills -9 the process of one role in the middle of
// a deal on one root and starts the role on another root (another machine,
// its keys copied), which takes the agent's lease over once the dead
// holder's has lapsed and goes on from the state the holder saved on the
// server: the deal finishes exactly once, not lost. The roles: procurement
// and finance (make faults: PARLEY_TAKEOVERS=all, every agent of the deal).
func TestJetStreamTakeover(t *testing.T) {
	bin := parleyBin(t)
	s := natstest.Start(t)
	roles := []string{"procurement", "finance"}
	if os.Getenv("PARLEY_TAKEOVERS") == "all" {
		roles = dealAgents
	}
	for _, victim := range roles {
		t.Run(victim, func(t *testing.T) {
			rootA, r := natsRoot(t, bin, fmt.Sprintf("%s?stream=TAKE%s&claim=2s", s.URL(), strings.ReplaceAll(strings.ToUpper(victim), "-", "")))
			rootB := filepath.Join(t.TempDir(), "hostB")
			if out, err := exec.Command("cp", "-a", rootA, rootB).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v\n%s", err, out)
			}
			procs, logs := startDeal(t, bin, rootA)
			awaitRootLines(r, victim, 3, 20*time.Second)
			midDeal(t, r)
			procs[victim].Process.Signal(syscall.SIGKILL)
			procs[victim].Wait()
			procs[victim] = takeOver(t, bin, rootB, victim, logs)
			es := awaitRoot(t, r, 2*time.Minute, dealDone, logs)
			checkOnce(t, r, es)
			stopAgents(procs)
		})
	}
}

// takeOver starts agent name on root until a process of it keeps running:
// one started while another root's holder's lease is fresh says so and
// exits.
func takeOver(t *testing.T, bin, root, name string, logs *lineLog) *exec.Cmd {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		cmd := startAgent(t, bin, root, name, logs)
		pid := strconv.Itoa(cmd.Process.Pid)
		up := time.Now().Add(3 * time.Second)
		for alive(pid) && time.Now().Before(up) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			return cmd
		}
		cmd.Wait()
		if time.Now().After(deadline) {
			t.Fatalf("%s was not taken over in a minute:\n%s", name, logs.String())
		}
		time.Sleep(500 * time.Millisecond) // the lease lapses in its own time
	}
}
