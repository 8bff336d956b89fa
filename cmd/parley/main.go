// Command parley runs a team of small agents that trade with each other
// through message files, under a written policy, with a ledger of all of it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() { os.Exit(runMain()) }

// runMain is main without the exit: Ctrl-C or SIGTERM cancels the context,
// and commands that follow something stop cleanly.
func runMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
}
