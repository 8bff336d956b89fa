package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// environWithout is this process's environment without the variables
// named: parley takes an empty PARLEY_ROOT as a root named "".
func environWithout(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, k) {
			env = append(env, kv)
		}
	}
	return env
}

// TestDemo plays the demo as make demo does — the story's scenario from a
// checkout, on the default root — twice, and after each run parley status
// finds nothing for a person: no agent down with work waiting (issue 20:
// it sometimes found the inventory so), the PAID and the inventory's
// notice printed with the rest.
func TestDemo(t *testing.T) {
	bin := parleyBin(t)
	dir := t.TempDir()
	scenarios, err := filepath.Abs("../../testdata/scenarios")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(scenarios, filepath.Join(dir, "testdata", "scenarios")); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = append(environWithout("PARLEY_ROOT", "PARLEY_TRANSPORT"), "PARLEY_NOW=2026-11-26T10:00:00Z")
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	for i := 1; i <= 2; i++ {
		out, code := run("demo")
		if code != 0 {
			t.Fatalf("demo, run %d: exit status %d\n%s", i, code, out)
		}
		for _, want := range []string{
			"scenario restock-widget:",
			"procurement → human       NOTIFY    Ordered 500 widget",
			"finance     → vendor-b    PAID      PAID: ",
			"procurement → inventory   NOTIFY    Ordered 500 widget",
			"outcome: ordered, as scenario restock-widget expects",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("demo, run %d, printed no %q:\n%s", i, want, out)
			}
		}
		status, code := run("status")
		if code != 0 || !strings.Contains(status, "nothing needs a person") {
			t.Fatalf("status after demo run %d: exit status %d, want 0\n%s", i, code, status)
		}
	}
}
