package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/ledgergen"
	"github.com/parley-dev/parley/mailbox"
)

// TestGitGrowsByTheNewLines commits a root whose ledger holds 10,000 lines
// of deals (6.7 MB), appends one more deal's 40 lines and commits again:
// with one ledger.jsonl .git grows by the whole file again; with the
// history in sealed segments, by the live file (under the segment size,
// 1 MiB here); sealed whole before each commit (parley ledger seal --all),
// by the new lines alone (issue 18: "a git commit after one more deal adds
// to .git in proportion to the new lines"). The figures are in
// docs/MAILBOX.md, "Sealed segments":
//
//	go test -run TestGitGrowsByTheNewLines -v ./cmd/parley
func TestGitGrowsByTheNewLines(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	const lines, deal = 10_000, 40
	t.Setenv(mailbox.SegmentSizeEnv, "1MiB")
	const (
		oneFile = iota
		sealed
		sealedAll
	)
	grew := map[int]int{}
	for mode, name := range []string{"one file", "sealed at 1 MiB", "sealed --all before each commit"} {
		dir := t.TempDir()
		path := filepath.Join(dir, mailbox.LedgerFile)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(f)
		if _, err := ledgergen.Write(w, ledgergen.Options{Lines: lines, Until: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		l, err := mailbox.OpenLedger(path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if mode != oneFile {
			if _, err := l.Seal(1 << 20); err != nil {
				t.Fatal(err)
			}
		}
		if mode == sealedAll {
			if _, err := l.Seal(0); err != nil {
				t.Fatal(err)
			}
		}
		git(t, dir, "init", "-q", ".")
		git(t, dir, "add", "-A")
		git(t, dir, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "history")
		before := looseKiB(t, dir)
		st, _ := os.Stat(path)
		es := make([]mailbox.Entry, deal)
		for i := range es {
			m := &mailbox.Message{ID: fmt.Sprintf("<%d.more@parley>", i), From: "procurement", To: "vendor-b", Thread: "restock-widget-more",
				Verb: mailbox.Counter, Item: "widget", Quantity: 500, UnitPrice: mailbox.MustMoney("4.80 USD"), Subject: "COUNTER: 500 widget at 4.80 USD each"}
			es[i] = mailbox.MessageEntry("procurement", mailbox.EventDelivered, m)
		}
		out, err := l.Append(es...)
		if err != nil {
			t.Fatal(err)
		}
		if mode == sealedAll {
			if _, err := l.Seal(0); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
		newBytes := 0
		for _, e := range out {
			line, _, _ := mailbox.Chain(e.Seq-1, e.Prev, []mailbox.Entry{e}, time.Now)
			newBytes += len(line)
		}
		git(t, dir, "add", "-A")
		git(t, dir, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one more deal")
		grew[mode] = looseKiB(t, dir) - before
		segs, _ := mailbox.SegmentFiles(path)
		t.Logf("%-31s: %d segments, live file %7d bytes at the first commit; %d new lines (%d bytes): .git grew %4d KiB",
			name, len(segs), st.Size(), deal, newBytes, grew[mode])
	}
	if grew[oneFile] < 10*grew[sealed] {
		t.Errorf(".git grew %d KiB with one file, %d KiB sealed: want the one file's many times the sealed", grew[oneFile], grew[sealed])
	}
	// The new lines compress to a few KiB; git adds the trees and the
	// commit.
	if grew[sealedAll]*1024 > 2*newBytesOf(deal)+16<<10 {
		t.Errorf("sealed before each commit, .git grew %d KiB for one deal: want about its lines", grew[sealedAll])
	}
}

// newBytesOf is about how many bytes n lines of the test's deal are.
func newBytesOf(n int) int { return n * 480 }

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// looseKiB is git count-objects -v's "size": the KiB of loose objects.
func looseKiB(t *testing.T, dir string) int {
	t.Helper()
	for _, line := range strings.Split(git(t, dir, "count-objects", "-v"), "\n") {
		if v, ok := strings.CutPrefix(line, "size: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("git count-objects -v: no size")
	return 0
}
