package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/mailbox"
)

// TestTemplates plays each template as a user would: parley init
// --template, every agent its own process, one message from the human, and
// the work comes back to the human through the team, every message in the
// ledger. (The procurement template is the demo, tested elsewhere.)
func TestTemplates(t *testing.T) {
	bin := parleyBin(t)
	tests := []struct {
		template, to, verb, subject, want string
		path                              []string // who passes the work on, in order
	}{
		{"minimal", "helper", "REQUEST", "the Q3 numbers", "Done: the Q3 numbers", []string{"helper"}},
		{"content", "writer", "REQUEST", "spring launch post", "Published: spring launch post", []string{"writer", "editor", "publisher"}},
		{"sales", "qualifier", "REQUEST", "ACME, 40 seats", "Call booked: ACME, 40 seats", []string{"qualifier", "proposer", "scheduler"}},
		{"ops", "monitor", "NOTIFY", "disk 95% on db-1", "Resolved: disk 95% on db-1", []string{"monitor", "responder", "reporter"}},
	}
	for _, tt := range tests {
		t.Run(tt.template, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			if out, err := exec.Command(bin, "--root", root, "init", "--template", tt.template).CombinedOutput(); err != nil {
				t.Fatalf("init: %v\n%s", err, out)
			}
			team, err := agents.LoadTeam(filepath.Join(root, agents.TeamFile))
			if err != nil {
				t.Fatal(err)
			}
			procs := map[string]*exec.Cmd{}
			logs := &lineLog{}
			for _, a := range team.Agents {
				if a.Role != "human" {
					procs[a.Name] = startAgent(t, bin, root, a.Name, logs)
				}
			}
			defer stopAgents(procs)
			msg := filepath.Join(t.TempDir(), "ask.msg")
			text := "From: human\nTo: " + tt.to + "\nVerb: " + tt.verb + "\nSubject: " + tt.subject + "\n\nPlease see to it.\n"
			if err := os.WriteFile(msg, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "--root", root, "send", msg).CombinedOutput(); err != nil {
				t.Fatalf("send: %v\n%s", err, out)
			}
			entries := awaitLedger(t, root, time.Minute, func(es []mailbox.Entry) bool {
				for _, e := range es {
					if e.Event == mailbox.EventDelivered && e.To == "human" && e.Subject == tt.want {
						return true
					}
				}
				return false
			}, logs)
			// The work went through each agent of the path, in turn.
			var senders []string
			for _, e := range entries {
				if e.Event == mailbox.EventDelivered && e.From != "human" && e.From != mailbox.System {
					senders = append(senders, e.From)
				}
			}
			if strings.Join(senders, " ") != strings.Join(tt.path, " ") {
				t.Errorf("the work went through %v, want %v", senders, tt.path)
			}
		})
	}
}
