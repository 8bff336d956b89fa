package main

import (
	"fmt"
	"runtime"

	"github.com/parley-dev/parley/mailbox"
	"github.com/urfave/cli/v2"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:      "version",
		Usage:     "print parley's version and the protocol version it speaks",
		ArgsUsage: " ",
		Description: `Example:
   parley version`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			if c.Bool("json") {
				return printJSON(c.App.Writer, map[string]string{"version": version, "protocol": mailbox.Version, "go": runtime.Version()})
			}
			_, err := fmt.Fprintf(c.App.Writer, "parley %s (protocol %s, %s)\n", version, mailbox.Version, runtime.Version())
			return err
		},
	}
}
