package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/cmdline"
	"github.com/urfave/cli/v2"
)

// TestCommandsList keeps cmdline's list of commands, which it recognises in
// text written for the default root, the CLI's own.
func TestCommandsList(t *testing.T) {
	app := newApp(nil, nil, nil)
	var names []string
	for _, c := range app.Commands {
		names = append(names, c.Name)
	}
	got, want := slices.Sorted(slices.Values(cmdline.Commands)), slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Errorf("cmdline.Commands = %v, want the CLI's commands %v", got, want)
	}
}

// TestPrintedCommandsRun plays an escalation and a pause on a root that is
// not the default one (its path has a space in it) and runs, pasted into a
// shell in another directory, each command parley prints for a person: in
// the demo, in status, in the ESCALATE the human receives, in an error's
// hint and after a pause. None may name a command without the root.
func TestPrintedCommandsRun(t *testing.T) {
	bin := parleyBin(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "my root")
	elsewhere := filepath.Join(dir, "elsewhere") // no ./mailboxes here
	if err := os.Mkdir(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(environWithout("PATH", "EDITOR", "PARLEY_ROOT", "PARLEY_TRANSPORT"), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"), "EDITOR=true")
	parley := func(wantCode int, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
		cmd.Dir, cmd.Env = elsewhere, env
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != wantCode {
			t.Fatalf("parley %s: %v, want exit status %d\n%s", strings.Join(args, " "), err, wantCode, out)
		}
		return string(out)
	}
	// sh runs command as a person pastes it, and returns its exit status.
	sh := func(command string) (int, string) {
		t.Helper()
		cmd := exec.Command("sh", "-c", command)
		cmd.Dir, cmd.Env = elsewhere, env
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	var printed []string // every output a person reads
	mustShow := func(where, text, command string) {
		t.Helper()
		if !strings.Contains(text, command) {
			t.Fatalf("%s does not show %q:\n%s", where, command, text)
		}
	}

	parley(0, "init")
	parley(0, "demo", "--scenario", "")
	// Again the same day: a split the policy asks the human about.
	demo := exec.Command(bin, "--root", root, "demo", "--scenario", "", "--human", "ask")
	demo.Dir, demo.Env = elsewhere, env
	demoOut := &lineLog{}
	demo.Stdout, demo.Stderr = demoOut, demoOut
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if demo.ProcessState == nil {
			demo.Process.Kill()
			demo.Wait()
		}
	})
	asked := regexp.MustCompile(`approve (restock-\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for !asked.MatchString(demoOut.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("the demo asked nothing in 30s:\n%s", demoOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	thread := asked.FindStringSubmatch(demoOut.String())[1]
	approve := cmdline.Render(root, "approve", thread)
	deny := cmdline.Render(root, "deny", thread, "--reason", "...")
	mustShow("the demo", demoOut.String(), approve)
	mustShow("the demo", demoOut.String(), deny)

	status := parley(exitAttention, "status")
	mustShow("status", status, approve)
	mustShow("status", status, deny)
	printed = append(printed, status)

	var escalate string
	for _, sub := range []string{"new", "cur"} {
		files, _ := filepath.Glob(filepath.Join(root, "human", sub, "*"))
		for _, f := range files {
			if data, err := os.ReadFile(f); err == nil && strings.Contains(string(data), "Verb: ESCALATE") && strings.Contains(string(data), thread) {
				escalate = string(data)
			}
		}
	}
	if escalate == "" {
		t.Fatal("no ESCALATE in the human's inbox")
	}
	printed = append(printed, escalate)
	mustShow("the ESCALATE", escalate, approve+"\n")
	compose := regexp.MustCompile(`parley --root .* compose .*`).FindString(escalate)
	if compose == "" {
		t.Fatalf("the ESCALATE shows no compose command:\n%s", escalate)
	}
	// An untouched draft ($EDITOR=true) is nothing sent: it ran, on the root.
	if code, out := sh(compose); code != 0 || !strings.Contains(out, "nothing sent") {
		t.Errorf("%s: exit status %d, want 0 and nothing sent\n%s", compose, code, out)
	}
	if code, out := sh(approve); code != 0 {
		t.Fatalf("%s: exit status %d, want 0\n%s", approve, code, out)
	}
	if err := demo.Wait(); err != nil {
		t.Fatalf("the demo after the answer: %v\n%s", err, demoOut.String())
	}
	printed = append(printed, demoOut.String())
	// The ESCALATE's deny, now that it is answered, reaches the root and
	// says so: not a usage error, not a root it cannot find.
	denyLine := regexp.MustCompile(`parley --root .* deny .*`).FindString(escalate)
	if code, out := sh(denyLine); code != exitError || !strings.Contains(out, thread) {
		t.Errorf("%s: exit status %d, want %d about %s\n%s", denyLine, code, exitError, thread, out)
	}

	// An error's hint, written deep in parley for the default root.
	hint := parley(exitError, "approve", "no-such-thread")
	printed = append(printed, hint)
	mustShow("approve's hint", hint, cmdline.Render(root, "status"))
	if code, out := sh(cmdline.Render(root, "status")); code != 0 {
		t.Errorf("the hint's status: exit status %d\n%s", code, out)
	}

	// A pause says how to lift it, and status says it again.
	paused := parley(0, "pause", "--reason", "look")
	resume := cmdline.Render(root, "resume")
	mustShow("pause", paused, resume)
	status = parley(exitAttention, "status")
	mustShow("status while paused", status, resume)
	printed = append(printed, paused, status)
	if code, out := sh(resume); code != 0 {
		t.Errorf("%s: exit status %d\n%s", resume, code, out)
	}

	bare := regexp.MustCompile(`(^|[^\w./-])parley (` + strings.Join(cmdline.Commands, "|") + `)\b.*`)
	for _, text := range printed {
		if m := bare.FindString(text); m != "" {
			t.Errorf("a command printed without its root: %q", strings.TrimSpace(m))
		}
	}
}

// TestEveryCommandHasAnExample checks each command's --help, groups of
// commands included, for an example to copy.
func TestEveryCommandHasAnExample(t *testing.T) {
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden || c.Name == "help" {
				continue
			}
			name := prefix + " " + c.Name
			if !strings.Contains(c.Description, "Example:\n   ") {
				t.Errorf("%s --help has no example", name)
			}
			walk(name, c.Subcommands)
		}
	}
	walk("parley", newApp(nil, nil, nil).Commands)
}
