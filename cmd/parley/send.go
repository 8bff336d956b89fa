package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/parley-dev/parley/policy"

	"github.com/parley-dev/parley/mailbox"
	"github.com/urfave/cli/v2"
)

func sendCommand() *cli.Command {
	return &cli.Command{
		Name:      "send",
		Usage:     "check a hand-written message and deliver it",
		ArgsUsage: "FILE|-",
		Description: `Reads a message (headers, a blank line, a body) from FILE, or from standard
input with -, checks it, fills in what a person may leave out (Parley,
Message-ID, Date, and Thread: the thread of the message it answers, or a new
one), delivers it into the recipient's inbox and records it in the ledger.
A message to an agent that does not exist is refused, and nothing is sent.

Example:
   cat > request.msg <<EOF
   From: inventory
   To: procurement
   Verb: REQUEST
   Item: widget
   Quantity: 500
   Subject: need 500 widget by Friday

   Stock is below the reorder point.
   EOF
   parley send request.msg`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "the sender, when the message has no From header"},
			&cli.BoolFlag{Name: "json", Usage: "print what was sent as JSON"},
		},
		Action: withRoot(1, 1, "one FILE, or - for standard input", func(c *cli.Context, e *env) error {
			name := c.Args().First()
			var (
				data []byte
				err  error
			)
			if name == "-" {
				data, err = io.ReadAll(e.stdin)
				name = "standard input"
			} else {
				data, err = os.ReadFile(name)
			}
			if err != nil {
				return fmt.Errorf("read message: %w", err)
			}
			m, err := e.send(name, data, c.String("from"))
			if err != nil {
				return err
			}
			return e.printSent(c.Bool("json"), m)
		}),
	}
}

// send checks a hand-written message, completes it and delivers it. name
// says where it came from, for errors. Comment lines among its headers (a
// draft of parley compose) are dropped, and an error names the line of
// data, comments counted, where a person finds it.
func (e *env) send(name string, data []byte, from string) (*mailbox.Message, error) {
	data, lines := dropComments(data)
	// at names the line in the person's text (before it is in the error's
	// words: fmt.Errorf writes them at once).
	at := func(err error) error {
		var pe *mailbox.ParseError
		if errors.As(err, &pe) && pe.Line > 0 && pe.Line <= len(lines) {
			pe.Line = lines[pe.Line-1]
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	m, err := mailbox.Parse(data)
	if err != nil {
		return nil, at(err)
	}
	if m.From == "" {
		m.From = from
	}
	if m.From == "" {
		return nil, withHint(fmt.Errorf("%s: the message has no From header", name), "add a line such as From: human, or give --from")
	}
	if err := e.member(m.From); err != nil {
		return nil, fmt.Errorf("%s: From: %w", name, err)
	}
	if m.To == "" {
		return nil, withHint(fmt.Errorf("%s: the message has no To header", name), "add a line such as To: procurement")
	}
	if err := e.member(m.To); err != nil {
		return nil, fmt.Errorf("%s: To: %w", name, err)
	}
	if err := e.root.Fill(m, nil); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, at(err)
	}
	// Policy before action: a hand-written message is decided like any other.
	eng := e.engine()
	if _, err := eng.Policy(); err != nil {
		// Nothing can be decided, so nothing is sent: an error to mend,
		// not a decision of the policy's (exit status 1, not 4).
		return nil, withHint(fmt.Errorf("nothing sent: the policy cannot be read: %w", err), "parley policy check names the line of policy.toml to mend")
	}
	if _, err := eng.Send(policy.Action{Agent: m.From, Message: m}); err != nil {
		if p, perr := eng.Policy(); perr == nil && errors.Is(err, policy.ErrEscalated) {
			return nil, withHint(err, fmt.Sprintf("%s was asked (parley inbox %s); once they answer with parley approve %s, send it again",
				p.Human.Agent, p.Human.Agent, m.Thread))
		}
		return nil, err
	}
	return m, nil
}

func (e *env) printSent(asJSON bool, m *mailbox.Message) error {
	if asJSON {
		return printJSON(e.stdout, map[string]string{
			"msg_id": m.ID, "thread": m.Thread, "from": m.From, "to": m.To, "verb": string(m.Verb),
		})
	}
	_, err := fmt.Fprintf(e.stdout, "sent %s from %s to %s: %s (thread %s)\n", m.Verb, m.From, m.To, m.ID, m.Thread)
	return err
}
