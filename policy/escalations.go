package policy

import (
	"time"

	"github.com/parley-dev/parley/mailbox"
)

// The states of an escalation: one state machine, read the same by the
// policy, parley status, inbox, approve and deny.
//
//	waiting ──answer──▶ answered
//	   │ └──a newer one on the thread, from the same agent──▶ withdrawn
//	   └──its Expires passes──▶ expired
const (
	Waiting   = "waiting"
	Answered  = "answered"
	Expired   = "expired"
	Withdrawn = "withdrawn"
)

// Escalation is a question an agent put to a person (an ESCALATE
// delivered), and how it was answered.
type Escalation struct {
	Thread   string    `json:"thread"`
	MsgID    string    `json:"msg_id"`
	From     string    `json:"from"` // who asked
	To       string    `json:"to"`   // who is asked
	Subject  string    `json:"subject"`
	Item     string    `json:"item,omitempty"`
	Amount   string    `json:"amount,omitempty"` // what an APPROVED must cover, a decimal
	Currency string    `json:"currency,omitempty"`
	File     string    `json:"file,omitempty"` // where it was delivered
	At       time.Time `json:"at"`
	Expires  time.Time `json:"expires,omitzero"`
	// The answer, once there is one: APPROVED or DENIED, by whom, when.
	Answer     string    `json:"answer,omitempty"`
	AnsweredAt time.Time `json:"answered_at,omitzero"`
	withdrawn  bool
}

// State says where the escalation stands at now.
func (x *Escalation) State(now time.Time) string {
	switch {
	case x.Answer != "":
		return Answered
	case x.withdrawn:
		return Withdrawn
	case !x.Expires.IsZero() && now.After(x.Expires):
		return Expired
	}
	return Waiting
}

// escalated records an ESCALATE delivered: a newer question from the same
// agent on the thread takes the place of one still waiting.
func (s *State) escalated(e mailbox.Entry) {
	x := &Escalation{Thread: e.Thread, MsgID: e.MsgID, From: e.From, To: e.To, Subject: e.Subject, Item: e.Item,
		Amount: e.Amount, Currency: e.Currency, File: e.File, At: e.Time}
	if e.Expires != "" {
		x.Expires, _ = time.Parse(time.RFC3339, e.Expires)
	}
	for _, old := range s.escalations[e.Thread] {
		if old.MsgID == e.MsgID {
			return // the same question, recorded again
		}
		if old.From == e.From && old.To == e.To && old.State(e.Time) == Waiting {
			old.withdrawn = true // one that expired stays expired
		}
	}
	s.escalations[e.Thread] = append(s.escalations[e.Thread], x)
	s.asked = append(s.asked, x)
}

// answered records an APPROVED or DENIED: it answers the questions put to
// its sender on the thread that had not expired when it came.
func (s *State) answered(e mailbox.Entry) {
	for _, x := range s.escalations[e.Thread] {
		if x.To == e.From && x.State(e.Time) == Waiting {
			x.Answer, x.AnsweredAt = e.Verb, e.Time
		}
	}
}

// Escalations lists the questions put to who, oldest first; with thread
// not "", only that thread's.
func (s *State) Escalations(who, thread string) []*Escalation {
	var out []*Escalation
	for _, x := range s.asked {
		if x.To == who && (thread == "" || x.Thread == thread) {
			out = append(out, x)
		}
	}
	return out
}
