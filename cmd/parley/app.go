package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/internal/cmdline"
	"github.com/parley-dev/parley/internal/tomlfile"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/mailbox/jsteam"
	"github.com/parley-dev/parley/policy"
	"github.com/urfave/cli/v2"
)

// Exit codes, documented in parley --help.
const (
	exitOK        = 0
	exitError     = 1
	exitUsage     = 2
	exitTampered  = 3
	exitPolicy    = 4
	exitAttention = 5
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "v0.1.0-dev"

// run is the whole CLI: it reads and writes only what it is given, so tests
// run it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	root := cmdline.DefaultRoot // as parsed, for the commands the hints name
	app.Before = func(c *cli.Context) error {
		root = c.String("root")
		if root != "" {
			return nil
		}
		if v, ok := os.LookupEnv("PARLEY_ROOT"); ok && v == "" && !slices.ContainsFunc(args, isRootFlag) {
			// An empty PARLEY_ROOT names no root, as an unset one does.
			root = cmdline.DefaultRoot
			return c.Set("root", root)
		}
		root = cmdline.DefaultRoot
		return usageError{errors.New("--root is empty: name a folder, or leave --root out for ./mailboxes")}
	}
	err := app.RunContext(ctx, hoistFlags(app, args))
	if err == nil {
		return exitOK
	}
	return report(stderr, err, root)
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "parley",
		Usage: "a team of small agents that trade through message files",
		Description: `parley runs agents — inventory, procurement, vendors, finance and a human —
that talk only by writing message files into each other's inboxes under a
mailbox root, and records every message in an append-only ledger.

Start with:
   parley init                 create ./mailboxes with the default team
   parley send request.msg     deliver a hand-written message
   parley inbox procurement    see what waits for an agent
   parley tail -f              follow the ledger

Exit status, the same for every command:
   0  done (also: a draft left as it was, nothing sent)
   1  an error: something to mend, said on stderr with a hint
   2  a usage error: the command's usage on one line, and what was meant
   3  parley ledger verify found the ledger altered
   4  the policy denied the action, or sent it to the human
   5  parley status or books finds something that needs a person

NO_COLOR turns colour off.`,
		Version:              version,
		Reader:               stdin,
		Writer:               stdout,
		ErrWriter:            stderr,
		HideHelpCommand:      true,
		Suggest:              true,
		EnableBashCompletion: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: "mailboxes", EnvVars: []string{"PARLEY_ROOT"},
				Usage: "the mailbox root: the agents' inboxes, parley.toml, policy.toml and the ledger"},
			&cli.StringFlag{Name: "transport", EnvVars: []string{"PARLEY_TRANSPORT"},
				Usage: "where the messages and the ledger go: files (the root's Maildirs) or nats://host:4222; default: parley.toml's transport, else files"},
		},
		Commands: []*cli.Command{
			initCommand(), demoCommand(), upCommand(), agentCommand(), sendCommand(), composeCommand(), inboxCommand(), watchCommand(),
			approveCommand(), denyCommand(), statusCommand(), booksCommand(), threadCommand(), whyCommand(), tailCommand(), ledgerCommand(),
			policyCommand(), pauseCommand(), resumeCommand(), keysCommand(), hooksCommand(), doctorCommand(), replayCommand(), simulateCommand(), bridgeCommand(), versionCommand(),
		},
		// Errors are reported once, by run; the library must not exit.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	strict(app)
	return app
}

// isRootFlag reports whether arg gives --root.
func isRootFlag(arg string) bool {
	return arg == "--root" || arg == "-root" || strings.HasPrefix(arg, "--root=") || strings.HasPrefix(arg, "-root=")
}

// hoistFlags moves a command's flags before its arguments, so that
// "parley inbox human --json" means what it says: urfave/cli v2, like Go's
// flag package, stops reading flags at the first argument.
func hoistFlags(app *cli.App, args []string) []string {
	i := skipFlags(app.Flags, args, 1)
	if i >= len(args) {
		return args
	}
	cmd := findCommand(app.Commands, args[i])
	if cmd == nil {
		return args
	}
	for i++; i < len(args); i++ {
		sub := findCommand(cmd.Subcommands, args[i])
		if sub == nil {
			break
		}
		cmd = sub
	}
	var flags, pos []string
	rest := args[i:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		switch {
		case a == "--":
			pos = append(pos, rest[j+1:]...)
			j = len(rest)
		case strings.HasPrefix(a, "-") && a != "-":
			flags = append(flags, a)
			if !strings.Contains(a, "=") && takesValue(cmd.Flags, a) && j+1 < len(rest) {
				flags = append(flags, rest[j+1])
				j++
			}
		default:
			pos = append(pos, a)
		}
	}
	out := append(append([]string(nil), args[:i]...), flags...)
	if len(pos) > 0 {
		out = append(append(out, "--"), pos...)
	}
	return out
}

// skipFlags returns the index of the first argument from i that is not a
// flag of flags (or a flag's value).
func skipFlags(flags []cli.Flag, args []string, i int) int {
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-" && args[i] != "--" {
		if !strings.Contains(args[i], "=") && takesValue(flags, args[i]) {
			i++
		}
		i++
	}
	return i
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue reports whether the flag arg (such as --root or -n) is one of
// flags and needs a value.
func takesValue(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}

// usageError is a mistake in how parley was called: exit status 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// hinted is an error with a line that says what to do.
type hinted struct {
	err  error
	hint string
}

func (e *hinted) Error() string { return e.err.Error() }
func (e *hinted) Unwrap() error { return e.err }

func withHint(err error, hint string) error { return &hinted{err, hint} }

// report prints err as one line, and a hint line when there is something
// to do, and returns the exit status. The commands a hint names are for
// root: whichever layer wrote the hint, it runs as printed.
func report(stderr io.Writer, err error, root string) int {
	if errors.Is(err, context.Canceled) {
		return exitOK // Ctrl-C on a command that follows something
	}
	var attention attentionError
	if errors.As(err, &attention) {
		return exitAttention // status said it all on stdout
	}
	fmt.Fprintf(stderr, "parley: error: %s\n", oneLine(err.Error()))
	var ul usageLine
	if errors.As(err, &ul) {
		fmt.Fprintf(stderr, "parley: usage: %s\n", ul.line)
	}
	if h := hintFor(err); h != "" {
		fmt.Fprintf(stderr, "parley: hint: %s\n", cmdline.ForRoot(root, h))
	}
	var ue usageError
	var ve *mailbox.VerifyError
	var decided *policy.DecisionError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &decided) && decided.Decision.Rule == "policy":
		return exitError // the policy could not be read: nothing was decided
	case errors.As(err, &ve) && ve.Kind != "torn":
		return exitTampered
	case errors.Is(err, policy.ErrDenied), errors.Is(err, policy.ErrEscalated):
		return exitPolicy
	}
	return exitError
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// hintFor finds the hint the error carries, from whichever layer knows it.
func hintFor(err error) string {
	var (
		h       *hinted
		pe      *mailbox.ParseError
		te      *tomlfile.Error
		ve      *mailbox.VerifyError
		ur      *mailbox.UnknownRecipientError
		ue      usageError
		ul      usageLine
		running *agents.RunningError
		decided *policy.DecisionError
	)
	switch {
	case errors.As(err, &h):
		return h.hint
	case errors.As(err, &pe):
		return pe.Hint
	case errors.As(err, &te):
		return te.Hint
	case errors.As(err, &ve):
		return ve.Hint
	case errors.As(err, &running):
		return "stop it first, or use it: there is one process per agent"
	case errors.As(err, &ur):
		if guess := suggest(ur.Name, ur.Agents); guess != "" {
			return "did you mean " + guess + "? (else add " + ur.Name + " to parley.toml and run parley init)"
		}
		return "send to one of the agents listed, or add the agent to parley.toml and run parley init"
	case errors.As(err, &decided):
		return decided.Hint()
	case errors.Is(err, policy.ErrNotPaused):
		return ""
	case errors.Is(err, mailbox.ErrNoRoot):
		return "run parley init to create it, or point --root (PARLEY_ROOT) at an existing root"
	case errors.As(err, &ul):
		return ul.help + " says more"
	case errors.As(err, &ue):
		return "see parley --help, or parley COMMAND --help"
	}
	return ""
}

// env is what every command works with: the root, the clock, the output.
type env struct {
	root      *mailbox.Root
	transport string // as named: "" for files
	stdout    io.Writer
	stderr    io.Writer
	stdin     io.Reader
	now       func() time.Time
	eng       *policy.Engine
	rec       mailbox.Record // read once, by status
}

// cmd is the command line "parley ARGS..." for the root, to print: it
// runs as printed, with --root when the root is not the default.
func (e *env) cmd(args ...string) string { return cmdline.Render(e.root.Dir, args...) }

// engine is the policy engine of the root, made once.
func (e *env) engine() *policy.Engine {
	if e.eng == nil {
		e.eng = policy.NewEngine(e.root)
	}
	return e.eng
}

// clock is the time source: time.Now, or the fixed time in PARLEY_NOW
// (RFC 3339), which makes output reproducible for tests and examples.
func clock() (func() time.Time, error) {
	s := os.Getenv("PARLEY_NOW")
	if s == "" {
		return time.Now, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, usageError{fmt.Errorf("PARLEY_NOW=%q is not an RFC 3339 time", s)}
	}
	return func() time.Time { return t }, nil
}

// open opens the root named by --root for a command.
func open(c *cli.Context) (*env, error) {
	now, err := clock()
	if err != nil {
		return nil, err
	}
	r, err := mailbox.OpenRoot(c.String("root"), now)
	if err != nil {
		return nil, err
	}
	transport, team := transportOf(c, r.Dir)
	if team != nil {
		r.MaxMessageSize = int64(team.MaxMessageSize)
	}
	if r.Transport, err = dialTransport(c.Context, transport, now); err != nil {
		return nil, err
	}
	if r.Transport != nil && team != nil {
		// A machine of a team on JetStream, checked out from git, has the
		// folders of only its own agents (git keeps no empty folder); every
		// agent of the team is a recipient all the same. (On a checkout
		// that cannot be written, reading commands still work.)
		for _, a := range team.Agents {
			_ = r.Inbox(a.Name).Create()
		}
	}
	return &env{root: r, transport: transport, stdout: c.App.Writer, stderr: c.App.ErrWriter, stdin: c.App.Reader, now: now}, nil
}

// transportOf is where the root's messages and ledger go: --transport
// (PARLEY_TRANSPORT), else parley.toml's transport, else "" (files); and
// the team, when parley.toml can be read (a team file that cannot says so
// to the commands that need it).
func transportOf(c *cli.Context, dir string) (string, *agents.Team) {
	team, err := agents.LoadTeam(filepath.Join(dir, agents.TeamFile))
	if err != nil {
		team = nil
	}
	if t := c.String("transport"); t != "" {
		return t, team
	}
	if team != nil {
		return team.Transport, team
	}
	return "", nil
}

// dialTransport connects to the root's transport: nil for files. Its
// requests give up a few seconds after ctx ends (Ctrl-C): time to finish
// the work in hand, not to wait out a server that is down.
func dialTransport(ctx context.Context, t string, now func() time.Time) (mailbox.Transport, error) {
	switch {
	case t == "" || t == "files":
		return nil, nil
	case !jsteam.IsURL(t):
		return nil, usageError{fmt.Errorf("transport %q: want files or nats://host:4222", jsteam.Redact(t))}
	}
	cfg, err := jsteam.ParseURL(t)
	if err != nil {
		return nil, usageError{err}
	}
	team, err := jsteam.Dial(lingering(ctx, 5*time.Second), cfg, now)
	if err != nil {
		return nil, withHint(err, "start the NATS server (nats-server -js), or check the transport URL in parley.toml or --transport")
	}
	return team, nil
}

// lingering is a context that ends grace after parent does.
func lingering(parent context.Context, grace time.Duration) context.Context {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	context.AfterFunc(parent, func() { time.AfterFunc(grace, cancel) })
	return ctx
}

// copyLedger keeps the root's copy of a ledger kept elsewhere up to date
// until ctx ends, for a command that follows the file.
func (e *env) copyLedger(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := e.root.LedgerPath(); err != nil {
				fmt.Fprintf(e.stderr, "parley: the ledger's copy: %v\n", err)
			}
		}
	}
}

func (e *env) close() {
	if e.eng != nil {
		e.eng.Close()
	}
	e.root.Close()
}

// team reads the root's parley.toml.
func (e *env) team() (*agents.Team, error) {
	return agents.LoadTeam(filepath.Join(e.root.Dir, agents.TeamFile))
}

// agent checks that name has an inbox in the root.
func (e *env) agent(name string) error {
	if !mailbox.ValidName(name) {
		return usageError{fmt.Errorf("%q is not an agent name", name)}
	}
	if !e.root.Inbox(name).Exists() {
		all, _ := e.root.Agents()
		return &mailbox.UnknownRecipientError{Name: name, Agents: all}
	}
	return nil
}

// member checks that name is an agent of the team: one with an inbox that
// parley agent remove took out of parley.toml keeps its inbox, for its
// history, but nothing runs it, and a message there would wait for ever.
func (e *env) member(name string) error {
	if err := e.agent(name); err != nil {
		return err
	}
	team, err := e.team()
	if err != nil || team.Agent(name) != nil {
		return nil // a root without a readable team: its inboxes say who is there
	}
	return withHint(fmt.Errorf("%s was removed from %s: its inbox stays, for its history, but no agent reads it", name, agents.TeamFile),
		fmt.Sprintf("send to one of %s, or add it back: %s", strings.Join(team.Names(), ", "), e.cmd("agent", "add", name, "--role", "ROLE")))
}

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// withRoot is a command's action that checks the number of arguments
// (max -1: any number) and opens the root before fn runs.
func withRoot(min, max int, what string, fn func(c *cli.Context, e *env) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := needArgs(c, min, max, what); err != nil {
			return err
		}
		e, err := open(c)
		if err != nil {
			return err
		}
		defer e.close()
		return fn(c, e)
	}
}

// needArgs checks the number of arguments.
func needArgs(c *cli.Context, min, max int, what string) error {
	if n := c.NArg(); n < min || (max >= 0 && n > max) {
		return misuse(c.Command, fmt.Errorf("%swant %s", whereIn(c.Command), what), "")
	}
	return nil
}

// age writes a duration as people say it: 40s, 3m, 2h, 5d.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
