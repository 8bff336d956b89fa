package agents

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
)

// smallDisk mounts a tmpfs of size bytes for the test, or skips it with
// the reason (mounting needs root, or CAP_SYS_ADMIN).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("a small tmpfs cannot be mounted here (%v): the disk-full test needs one", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes into path until the disk is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	for {
		if _, err := f.Write(page); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// TestDiskFull fills the disk under a running agent as a request comes in:
// the agent does not exit, says so, keeps the request claimed, and once
// space is freed answers it exactly once; the ledger verifies, with no
// torn line left and no empty set-aside file.
func TestDiskFull(t *testing.T) {
	dir := filepath.Join(smallDisk(t, "4m"), "root")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	team := defaultTeam(t)
	r, err := mailbox.OpenRoot(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, a := range team.Agents {
		if err := r.Inbox(a.Name).Create(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.NewKey(a.Name); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, policy.File), policy.Default, 0o644); err != nil {
		t.Fatal(err)
	}
	// Paused (an empty PAUSED takes no space), so that the request waits
	// until the disk is full.
	paused := filepath.Join(dir, policy.PausedFile)
	if err := os.WriteFile(paused, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	a := startRuntime(t, r, team, "finance")
	a.await("paused", 1)
	post(t, r, request("full"))
	filler := filepath.Join(dir, "..", "filler")
	fill(t, filler)
	if err := os.Remove(paused); err != nil {
		t.Fatal(err)
	}
	a.await("disk full or failing since", 1)
	// parley status reads it from the agent's heartbeat.
	if live := Alive(r.Inbox("finance").Path("state", "lock")); !live.Running || !strings.HasPrefix(live.Trouble, "disk full or failing since") {
		t.Errorf("the lock file says %+v, want the agent running and its disk full", live)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	a.await("→ procurement APPROVED", 1)
	a.await("the disk is back", 1)
	if live := Alive(r.Inbox("finance").Path("state", "lock")); live.Trouble != "" {
		t.Errorf("after the disk is back, the lock file still says %q", live.Trouble)
	}
	a.close()
	if !strings.Contains(strings.Join(a.seen, "\n"), "disk full or failing since") && !strings.Contains(strings.Join(a.seen, "\n"), "inbox: ") {
		t.Errorf("the agent did not say the disk was full:\n%s", strings.Join(a.seen, "\n"))
	}
	t.Logf("the agent said:\n%s", strings.Join(a.seen, "\n"))

	approvals := 0
	for _, n := range names(t, r.Inbox("procurement").Path("new")) {
		data, _ := os.ReadFile(r.Inbox("procurement").Path("new", n))
		if strings.Contains(string(data), "Verb: APPROVED") {
			approvals++
		}
	}
	if approvals != 1 {
		t.Errorf("procurement got %d approvals, want 1", approvals)
	}
	if got := names(t, r.Inbox("finance").Path("cur")); len(got) != 1 || !strings.HasSuffix(got[0], ":2,S") {
		t.Errorf("finance's cur/ holds %v, want the request done", got)
	}
	f, err := os.Open(filepath.Join(dir, mailbox.LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := mailbox.Verify(f); err != nil {
		t.Errorf("ledger verify: %v", err)
	}
	torn, _ := filepath.Glob(filepath.Join(dir, mailbox.LedgerFile+".torn.*"))
	for _, p := range torn {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("%s is empty", p)
		}
	}
	if len(torn) > 1 {
		t.Errorf("%d torn tails set aside: %v", len(torn), torn)
	}
}
