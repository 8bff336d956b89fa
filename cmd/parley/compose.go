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
for a commit message. When the editor exits, the lines starting with # in
the headers are dropped and the message is checked and sent as by parley
send. A draft left as it was, or emptied, sends nothing (exit status 0). A
draft with a mistake is kept, and the error names its line in the draft and
says how to send it once fixed (parley send takes the draft as it is).

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
			tmpl := template(c)
			_, err = draft.WriteString(tmpl)
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
			if string(data) == tmpl {
				os.Remove(path)
				fmt.Fprintln(e.stderr, "nothing sent: the draft was not changed")
				return nil
			}
			if text, _ := dropComments(data); len(bytes.TrimSpace(text)) == 0 {
				os.Remove(path)
				fmt.Fprintln(e.stderr, "nothing sent: the draft was empty")
				return nil
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
# Lines starting with # above the blank line are dropped; a draft left as
# it is, or emptied, sends nothing.
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

// dropComments drops the lines starting with # among the headers (above
// the first blank line), as a draft of parley compose has them, and says
// for each line left its line in data: errors name the line a person sees
// in the file. A header never starts with #, so a message without such
// lines is as it was; below the headers, # is the person's text.
func dropComments(data []byte) (text []byte, lines []int) {
	var out [][]byte
	inHeaders := true
	for i, line := range bytes.SplitAfter(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if inHeaders && bytes.HasPrefix(line, []byte("#")) {
			continue
		}
		if inHeaders && len(bytes.TrimRight(line, "\r\n")) == 0 {
			inHeaders = false
		}
		out = append(out, line)
		lines = append(lines, i+1)
	}
	return bytes.Join(out, nil), lines
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
