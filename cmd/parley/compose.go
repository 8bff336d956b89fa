package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/parley-dev/parley/mailbox"
	"github.com/urfave/cli/v2"
)

func composeCommand() *cli.Command {
	return &cli.Command{
		Name:      "compose",
		Usage:     "write a message in your editor, then send it",
		ArgsUsage: " ",
		Description: `Opens $VISUAL or $EDITOR (else vi) on a draft outside the inbox, as git does
for a commit message. When the editor exits, lines starting with # are
dropped and the message is checked and sent as by parley send. An empty draft
sends nothing. A draft with a mistake is kept, and the error says where it is
and how to send it once fixed.

Example:
   parley compose --from human --to finance --verb APPROVED
   EDITOR=nano parley compose --to procurement`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Value: "human", Usage: "the sender"},
			&cli.StringFlag{Name: "to", Usage: "the recipient"},
			&cli.StringFlag{Name: "verb", Usage: "the verb, such as REQUEST or APPROVED"},
			&cli.StringFlag{Name: "reply-to", Usage: "the Message-ID this answers (the thread follows from it)"},
			&cli.BoolFlag{Name: "json", Usage: "print what was sent as JSON"},
		},
		Action: withRoot(0, 0, "no arguments", func(c *cli.Context, e *env) error {
			if err := e.agent(c.String("from")); err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			draft, err := os.CreateTemp("", "parley-draft-*.msg")
			if err != nil {
				return fmt.Errorf("create draft: %w", err)
			}
			path := draft.Name()
			_, err = draft.WriteString(template(c))
			if cerr := draft.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("write draft: %w", err)
			}
			if err := e.edit(path); err != nil {
				return withHint(err, "the draft is kept at "+path)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("read draft: %w", err)
			}
			data = dropComments(data)
			if len(bytes.TrimSpace(data)) == 0 {
				os.Remove(path)
				return fmt.Errorf("nothing sent: the draft was empty")
			}
			m, err := e.send(path, data, c.String("from"))
			if err != nil {
				hint := "fix the draft, then send it with: parley send " + path
				if h := hintFor(err); h != "" {
					hint = h + "; then send the draft with: parley send " + path
				}
				return withHint(err, hint)
			}
			os.Remove(path) // delivered: the message lives in the inbox now
			return e.printSent(c.Bool("json"), m)
		}),
	}
}

func template(c *cli.Context) string {
	var b strings.Builder
	b.WriteString(`# Write the message: headers, one blank line, then the text.
# Lines starting with # are dropped; an empty draft sends nothing.
# Verbs: ` + strings.Join(verbNames(), " ") + `
# Money is exact, with a currency: Unit-Price: 4.80 USD, Amount: 2400.00 USD.
# parley fills in Message-ID, Date and Thread.
`)
	fmt.Fprintf(&b, "From: %s\nTo: %s\nVerb: %s\n", c.String("from"), c.String("to"), c.String("verb"))
	if r := c.String("reply-to"); r != "" {
		fmt.Fprintf(&b, "In-Reply-To: %s\n", r)
	}
	b.WriteString("Subject: \n\n")
	return b.String()
}

func verbNames() []string {
	var s []string
	for _, v := range mailbox.Verbs {
		s = append(s, string(v))
	}
	return s
}

func dropComments(data []byte) []byte {
	var out [][]byte
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("#")) {
			out = append(out, line)
		}
	}
	return bytes.Join(out, nil)
}

// edit runs the user's editor on path, attached to parley's terminal. The
// editor is a shell word list, as git reads it: EDITOR="code --wait" works.
func (e *env) edit(path string) error {
	editor := os.Getenv("VISUAL")
	if editor == "" {
		editor = os.Getenv("EDITOR")
	}
	if editor == "" {
		editor = "vi"
	}
	cmd := exec.Command("sh", "-c", editor+` "$@"`, editor, path)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr
	if f, ok := e.stdin.(*os.File); ok {
		cmd.Stdin = f
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("editor %q: %w", editor, err)
	}
	return nil
}
