package agents

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
)

// Declared is the rule-based side of an agent of a role declared in
// parley.toml: it does nothing by itself. Under an Ollama brain the model
// takes each step, choosing among what the role allows — one of the verbs
// it sends that carry no money, to one of the agents it may send to, or
// nothing — and writing the message.
type Declared struct {
	Name string    `json:"-"`
	Spec *RoleSpec `json:"-"`
	Team *Team     `json:"-"`
}

// Receive, Tick and Denied send nothing: a declared role has no rules.
func (r *Declared) Receive(time.Time, *mailbox.Message) []*mailbox.Message { return nil }

// Tick sends nothing.
func (r *Declared) Tick(time.Time) []*mailbox.Message { return nil }

// Denied sends nothing.
func (r *Declared) Denied(time.Time, *mailbox.Message, policy.Decision) []*mailbox.Message {
	return nil
}

// talk are the verbs a model may send for a declared role: those that
// carry no money and need no fields.
var talk = []mailbox.Verb{mailbox.Request, mailbox.Notify, mailbox.Accept, mailbox.Decline, mailbox.Escalate}

func (r *Declared) choice(now time.Time, m *mailbox.Message) (Choice, bool) {
	if !r.Spec.Acts(m.Verb) {
		return Choice{}, false
	}
	c := Choice{Actions: []string{"NOTHING"}, Means: map[string]string{"NOTHING": "send nothing"}}
	for _, v := range talk {
		if len(r.Spec.Sends) == 0 || slices.Contains(r.Spec.Sends, string(v)) {
			c.Actions = append(c.Actions, string(v))
			c.Means[string(v)] = "send a " + string(v)
		}
	}
	for _, a := range r.Team.Agents {
		if a.Name == r.Name {
			continue
		}
		for _, g := range r.Spec.To {
			if ok, _ := path.Match(g, a.Name); ok {
				c.To = append(c.To, a.Name)
				break
			}
		}
		if len(r.Spec.To) == 0 {
			c.To = append(c.To, a.Name)
		}
	}
	if len(c.To) == 0 || len(c.Actions) == 1 {
		return Choice{}, false // it may send nothing a model could write
	}
	c.Facts = fmt.Sprintf("You are %s, of the %s role. You may send %s to %s.\n", r.Name, r.Spec.Name,
		strings.Join(c.Actions[1:], ", "), strings.Join(c.To, ", "))
	return c, true
}

func (r *Declared) take(now time.Time, m *mailbox.Message, p Pick) []*mailbox.Message {
	if p.Action == "NOTHING" {
		return nil
	}
	subject, _, _ := strings.Cut(strings.TrimSpace(p.Text), "\n")
	out := &mailbox.Message{From: r.Name, To: p.To, Thread: m.Thread, Verb: mailbox.Verb(p.Action),
		Subject: clip(subject, 120), Body: strings.TrimSpace(p.Text) + "\n"}
	if p.To == m.From {
		out.InReplyTo = m.ID
	}
	return []*mailbox.Message{out}
}
