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

	"github.com/nats-io/nats-server/v2/server"
	"github.com/parley-dev/parley/internal/natstest"
	"github.com/rogpeppe/go-internal/testscript"
)

// The CLI tests are scripts under testdata/script, run as a user would run
// parley, with the real CLI built into this test binary.
func TestMain(m *testing.M) {
	if natstest.Serve() { // a NATS server process a test kills -9
		return
	}
	testscript.Main(m, map[string]func(){
		"parley": func() { os.Exit(runMain()) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "../../testdata/script",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			scenarios, err := filepath.Abs("../../testdata/scenarios")
			if err != nil {
				return err
			}
			e.Setenv("SCENARIOS", scenarios)
			e.Setenv("TZ", "UTC")
			e.Setenv("EDITOR", "false")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"await":      await,
			"awaitgrep":  awaitGrep,
			"natsserver": natsServer,
			"awaitrun":   awaitRun,
			"exits":      exits,
		},
	})
}

// await [N] GLOB waits until GLOB matches at least N files (default 1), for
// what a background command does: the scripts wait on a result, never for a
// time.
func await(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: await [N] GLOB")
	}
	want := 1
	if len(args) == 2 {
		n, err := strconv.Atoi(args[0])
		if err != nil {
			ts.Fatalf("await: %v", err)
		}
		want, args = n, args[1:]
	}
	pattern := ts.MkAbs(args[0])
	deadline := time.Now().Add(30 * time.Second)
	for {
		matches, _ := filepath.Glob(pattern)
		if len(matches) >= want {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("await: %s matched %d files after 30s, want %d", args[0], len(matches), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// awaitrun REGEXP CMD ARGS... runs the command again until its standard
// output has a line matching REGEXP (whatever its exit status), for a
// state another process reaches: the scripts wait on a result.
func awaitRun(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: awaitrun REGEXP CMD ARGS...")
	}
	re, err := regexp.Compile("(?m)" + args[0])
	if err != nil {
		ts.Fatalf("awaitrun: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_ = ts.Exec(args[1], args[2:]...)
		if re.MatchString(ts.ReadFile("stdout")) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("awaitrun: %s printed no line matching %s in 30s; last:\n%s", strings.Join(args[1:], " "), args[0], ts.ReadFile("stdout"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// natsserver starts a NATS server with JetStream in the test process, on a
// free loopback port, storing in the script's work folder, and sets
// NATS_URL to it; it stops when the script ends.
func natsServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: natsserver")
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: ts.MkAbs("jetstream"), NoLog: true, NoSigs: true})
	if err != nil {
		ts.Fatalf("natsserver: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		ts.Fatalf("natsserver: not ready after 10s")
	}
	ts.Defer(s.Shutdown)
	ts.Setenv("NATS_URL", s.ClientURL())
}

// awaitgrep REGEXP FILE waits until FILE has a line matching REGEXP.
func awaitGrep(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: awaitgrep REGEXP FILE")
	}
	re, err := regexp.Compile("(?m)" + args[0])
	if err != nil {
		ts.Fatalf("awaitgrep: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if data, err := os.ReadFile(ts.MkAbs(args[1])); err == nil && re.Match(data) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("awaitgrep: no line of %s matched %s after 30s", args[1], args[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exits N PROGRAM [ARGS...] runs PROGRAM, as exec does, and checks that it
// exits with status N; its output is the script's stdout and stderr.
func exits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits N PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: %v", err)
	}
	path, err := exec.LookPath(args[1])
	if err != nil {
		ts.Fatalf("exits: %v", err)
	}
	cmd := exec.Command(path, args[2:]...)
	cmd.Dir = ts.MkAbs(".")
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ", "WORK", "EDITOR", "PARLEY_ROOT", "PARLEY_NOW", "NO_COLOR", "TERM"} {
		if v := ts.Getenv(k); v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Stdout, cmd.Stderr = ts.Stdout(), ts.Stderr()
	err = cmd.Run()
	got := 0
	if ee, ok := err.(*exec.ExitError); ok {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", strings.Join(args[1:], " "), got, want)
	}
}
