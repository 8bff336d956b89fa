package main

import (
	"fmt"
	"github.com/parley-dev/parley/internal/spell"
	"reflect"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// A usage error says what was wrong, the command's usage on one line, and
// what was probably meant — never the whole help page (parley COMMAND
// --help shows that). Its exit status is 2.

// usageLine is a usage error with the usage of the command it concerns.
type usageLine struct {
	error
	line string // parley deny [options] THREAD
	help string // parley deny --help
}

func (e usageLine) Unwrap() error { return e.error }

// usageOf is cmd's usage on one line: parley ledger verify [options] ARGS.
func usageOf(cmd *cli.Command) string {
	if cmd == nil {
		return "parley [options] COMMAND [command options] [arguments...]"
	}
	s := cmd.HelpName
	if s == "" {
		s = "parley " + cmd.Name
	}
	if len(commandNames(cmd.Subcommands)) > 0 {
		return s + " COMMAND [arguments...]"
	}
	if len(cmd.VisibleFlags()) > 0 {
		s += " [options]"
	}
	if a := strings.TrimSpace(cmd.ArgsUsage); a != "" {
		s += " " + a
	}
	return s
}

// misuse is a usage error about cmd, with a hint when there is a guess.
func misuse(cmd *cli.Command, err error, guess string) error {
	help := "parley --help"
	if cmd != nil && cmd.HelpName != "" {
		help = cmd.HelpName + " --help"
	}
	err = usageLine{usageError{err}, usageOf(cmd), help}
	if guess != "" {
		return withHint(err, "did you mean "+guess+"?")
	}
	return err
}

// suggest is the option word probably meant, or "".
func suggest(word string, options []string) string { return spell.Nearest(word, options) }

// commandNames are the names of cmds, hidden ones left out.
func commandNames(cmds []*cli.Command) []string {
	var names []string
	for _, c := range cmds {
		if !c.Hidden && c.Name != "help" {
			names = append(names, c.Name)
		}
	}
	return names
}

// flagNames are the names of flags as typed: --json, -n.
func flagNames(flags []cli.Flag) []string {
	var names []string
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == "help" || n == "h" {
				continue
			}
			if len(n) == 1 {
				names = append(names, "-"+n)
			} else {
				names = append(names, "--"+n)
			}
		}
	}
	return names
}

// strict makes every command of app report its usage errors so: a flag it
// does not know, a subcommand it does not have.
func strict(app *cli.App) {
	app.OnUsageError = func(c *cli.Context, err error, _ bool) error {
		return flagMisuse(nil, app.Flags, err)
	}
	app.Action = func(c *cli.Context) error {
		if !c.Args().Present() {
			return cli.ShowAppHelp(c)
		}
		name := c.Args().First()
		guess := suggest(name, commandNames(app.Commands))
		if guess != "" {
			guess = "parley " + guess
		}
		return withHint(misuse(nil, fmt.Errorf("unknown command %q", name), ""), hintFor2(guess, "parley --help lists the commands"))
	}
	var walk func(cmds []*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, cmd := range cmds {
			cmd := cmd
			cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
				return flagMisuse(cmd, cmd.Flags, err)
			}
			optional(cmd)
			if len(cmd.Subcommands) > 0 && cmd.Action == nil {
				cmd.Action = func(c *cli.Context) error {
					if !c.Args().Present() {
						return cli.ShowSubcommandHelp(c)
					}
					name := c.Args().First()
					guess := suggest(name, commandNames(cmd.Subcommands))
					if guess != "" {
						guess = cmd.HelpName + " " + guess
					}
					return withHint(misuse(cmd, fmt.Errorf("%sunknown command %q", whereIn(cmd), name), ""),
						hintFor2(guess, cmd.HelpName+" --help lists its commands"))
				}
			}
			walk(cmd.Subcommands)
		}
	}
	walk(app.Commands)
}

// hintFor2 is "did you mean GUESS?", or else the fallback.
func hintFor2(guess, fallback string) string {
	if guess != "" {
		return "did you mean " + guess + "?"
	}
	return fallback
}

// optional checks cmd's required flags itself: urfave/cli prints the
// whole help page with its error, where one usage line does.
func optional(cmd *cli.Command) {
	var required []string
	for _, f := range cmd.Flags {
		if r, ok := f.(cli.RequiredFlag); ok && r.IsRequired() {
			if v := reflect.ValueOf(f); v.Kind() == reflect.Pointer {
				if field := v.Elem().FieldByName("Required"); field.CanSet() {
					field.SetBool(false)
					required = append(required, f.Names()[0])
				}
			}
		}
	}
	if len(required) == 0 || cmd.Action == nil {
		return
	}
	action := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		var missing []string
		for _, n := range required {
			if !c.IsSet(n) {
				missing = append(missing, "--"+n)
			}
		}
		if len(missing) > 0 {
			return misuse(cmd, fmt.Errorf("%smissing %s", whereIn(cmd), strings.Join(missing, ", ")), "")
		}
		return action(c)
	}
}

// flagMisuse is the usage error for a flag cmd could not take.
func flagMisuse(cmd *cli.Command, flags []cli.Flag, err error) error {
	msg := err.Error()
	const undefined = "flag provided but not defined: "
	if name, ok := strings.CutPrefix(msg, undefined); ok {
		bare := strings.TrimLeft(name, "-")
		typed := "--" + bare
		if len(bare) == 1 {
			typed = "-" + bare
		}
		err = fmt.Errorf("%sunknown flag %s", whereIn(cmd), typed)
		if guess := suggest(typed, flagNames(flags)); guess != "" {
			return misuse(cmd, err, guess)
		}
		return misuse(cmd, err, valueMeant(flags, bare))
	}
	return misuse(cmd, fmt.Errorf("%s%w", whereIn(cmd), err), "")
}

// valueMeant is the flag and value meant by a flag that is one of another
// flag's values, "--format html" for thread's --html, or "".
func valueMeant(flags []cli.Flag, bare string) string {
	for _, f := range flags {
		sf, ok := f.(*cli.StringFlag)
		if !ok || len(bare) < 3 {
			continue
		}
		values := strings.FieldsFunc(sf.Usage, func(r rune) bool { return r == ',' || r == ' ' || r == ':' || r == ';' })
		// A usage that lists values reads "text, mermaid or html".
		if slices.Contains(values, bare) && slices.Contains(values, "or") {
			return "--" + sf.Name + " " + bare
		}
	}
	return ""
}

// whereIn opens an error about cmd: "ledger verify: ".
func whereIn(cmd *cli.Command) string {
	if cmd == nil {
		return ""
	}
	return strings.TrimPrefix(cmd.HelpName, "parley ") + ": "
}
