package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tourSteps are the shell commands of the README's "A tour", in order, a
// here-document kept whole with its command, each with the comment beside
// it (what the README says it does or prints).
func tourSteps(t *testing.T) (cmds, comments []string) {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, tour, ok := strings.Cut(string(data), "\n## A tour\n")
	if !ok {
		t.Fatal(`README.md has no "## A tour"`)
	}
	tour, _, _ = strings.Cut(tour, "\n## ")
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(tour, -1) {
		lines := strings.Split(strings.TrimRight(block[1], "\n"), "\n")
		for i := 0; i < len(lines); i++ {
			cmd, comment := lines[i], ""
			if j := strings.Index(cmd, "  # "); j >= 0 {
				cmd, comment = strings.TrimSpace(cmd[:j]), strings.TrimSpace(cmd[j+4:])
			}
			if m := regexp.MustCompile(`<<'(\w+)'$`).FindStringSubmatch(cmd); m != nil {
				for i++; i < len(lines); i++ {
					cmd += "\n" + lines[i]
					if lines[i] == m[1] {
						break
					}
				}
			}
			cmds, comments = append(cmds, cmd), append(comments, comment)
		}
	}
	if len(cmds) < 10 {
		t.Fatalf("the tour has %d commands", len(cmds))
	}
	return cmds, comments
}

// TestWalkthrough plays the README's tour as a new user would, in a shell
// in an empty directory with parley on the PATH: each command exits as the
// README says (0, or the "exit N" beside it), and prints what it says.
// What follows or waits (parley up, tail -f) runs in the background;
// after lowering the stock the user waits, as the README does, for the
// notice in the human's inbox, and after starting a deal by hand for it
// to reach the human.
func TestWalkthrough(t *testing.T) {
	bin := parleyBin(t)
	dir := t.TempDir()
	env := append(environWithout("PATH", "EDITOR", "PARLEY_ROOT", "PARLEY_TRANSPORT", "PARLEY_NOW", "NO_COLOR"),
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"EDITOR=true", // the draft left as it was: nothing sent
		"PARLEY_NOW=2026-11-26T10:00:00Z")
	sh := func(command string) (string, int) {
		cmd := exec.Command("sh", "-c", command)
		cmd.Dir, cmd.Env = dir, env
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	// What the README says a command prints, where it says it.
	prints := map[string]string{
		"parley init":                       "ready with 7 agents",
		"parley status":                     "AGENT",
		"parley inbox human":                "Ordered 500 widget for 2300.00 USD from vendor-b. Delivery Saturday.",
		"parley thread restock-widget-1":    "REQUEST",
		"parley send request.msg":           "sent REQUEST from inventory to procurement",
		"parley inbox procurement":          "STATE",
		"parley ledger verify":              ": ok, ",
		"parley send big.msg":               "escalated to the human",
		"parley approve deal-1":             "sent APPROVED from human to finance",
		"parley inbox human --archive done": "archived ",
		"parley policy explain big.msg":     "allow by human.approved",
		`parley pause --reason "audit"`:     "paused",
	}
	cmds, comments := tourSteps(t)
	sentBig := false
	ran := map[string]bool{}
	for i, c := range cmds {
		switch {
		case strings.HasPrefix(c, "make ") || strings.HasPrefix(c, "export PATH="):
			continue // the test binary is parley, on the PATH
		case c == "parley tail -f":
			continue // follows for ever; parley tail runs below
		case c == "parley up":
			up := exec.Command(bin, "up")
			up.Dir, up.Env = dir, env
			logs := &lineLog{}
			up.Stdout, up.Stderr = logs, logs
			if err := up.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { up.Process.Signal(os.Interrupt); up.Wait() })
			awaitShell(t, sh, "parley status", regexp.MustCompile(`(?m)^human +human +pid`), logs)
			continue
		}
		want := 0
		if m := regexp.MustCompile(`exit (\d)`).FindStringSubmatch(comments[i]); m != nil {
			want, _ = strconv.Atoi(m[1])
		}
		if c == "parley send big.msg" && sentBig {
			want = 0 // "now allowed, by rule human.approved"
		}
		out, code := sh(c)
		ran[c] = true
		if code != want {
			t.Fatalf("step %d, %s: exit status %d, want %d\n%s", i+1, c, code, want, out)
		}
		if w, ok := prints[c]; ok && !strings.Contains(out, w) && !(c == "parley send big.msg" && sentBig) {
			t.Errorf("step %d, %s printed no %q:\n%s", i+1, c, w, out)
		}
		if c == "parley send big.msg" {
			sentBig = true
		}
		if strings.HasPrefix(c, "sed -i 's/stock = 400/stock = 40/'") {
			// The person watches the team work, and reads the notice.
			awaitShell(t, sh, "parley inbox human", regexp.MustCompile(`Ordered 500 widget`), nil)
		}
		if c == "parley send request.msg" {
			// The deal it starts goes on while the tour does; the checks
			// below read a team at rest: the second order of the day from
			// a vendor waits for the human (a split), or is done.
			awaitShell(t, sh, "parley inbox human", regexp.MustCompile(`(?s)waiting +\S+ +ESCALATE|Ordered.*Ordered`), nil)
		}
	}
	for c := range prints {
		if !ran[c] {
			t.Errorf("the README's tour no longer runs %q: mend the tour or this test", c)
		}
	}
}

// awaitShell runs command again until its output matches re, for what the
// agents do in the background; 30 s at most.
func awaitShell(t *testing.T, sh func(string) (string, int), command string, re *regexp.Regexp, logs *lineLog) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := sh(command)
		if re.MatchString(out) {
			return
		}
		if time.Now().After(deadline) {
			more := ""
			if logs != nil {
				more = "\nthe agents said:\n" + logs.String()
			}
			t.Fatalf("%s printed nothing matching %s in 30s; last:\n%s%s", command, re, out, more)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
