// Package proctest runs tests across real processes: the test binary
// re-executes itself as a helper (the os/exec tests' pattern), with
// PARLEY_TEST_HELPER naming what the helper does.
package proctest

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Main is a TestMain: in a helper process it runs the named helper and
// exits, otherwise it runs the tests.
func Main(m *testing.M, helpers map[string]func(args []string) error) {
	if name := os.Getenv("PARLEY_TEST_HELPER"); name != "" {
		h, ok := helpers[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "helper: unknown helper %q\n", name)
			os.Exit(2)
		}
		if err := h(strings.Fields(os.Getenv("PARLEY_TEST_ARGS"))); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// WaitGo blocks a helper until the test lets all helpers go at once.
func WaitGo() { _, _ = io.Copy(io.Discard, os.Stdin) }

// Start starts n helpers running name with args(i) (space-separated) and
// returns a function that lets them go together, waits for them and
// returns each one's standard output.
func Start(t testing.TB, n int, name string, args func(i int) string) func() []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmds := make([]*exec.Cmd, n)
	outs := make([]*strings.Builder, n)
	gos := make([]io.WriteCloser, n)
	for i := range cmds {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "PARLEY_TEST_HELPER="+name, "PARLEY_TEST_ARGS="+args(i))
		outs[i] = &strings.Builder{}
		cmd.Stdout, cmd.Stderr = outs[i], os.Stderr
		if gos[i], err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	return func() []string {
		for _, g := range gos {
			g.Close()
		}
		res := make([]string, n)
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("helper %d (%s): %v", i, name, err)
			}
			res[i] = outs[i].String()
		}
		return res
	}
}
