package main

import (
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/urfave/cli/v2"
)

func threadCommand() *cli.Command {
	return &cli.Command{
		Name:      "thread",
		Usage:     "one deal as a conversation, or the list of deals",
		ArgsUsage: "[ID]",
		Description: `Without an ID, lists the threads: when they started and last moved, how many
messages, who took part, and the last word. A thread of notices or errors
alone (a NOTIFY or an ERROR each in a thread of its own, as parley's
bounces and hand-sent notes are) is counted below the list, not listed:
--all lists them too. --agent and --verb keep the threads in which that
agent took part, or that verb was said (repeat either for more).

With an ID, shows that thread as
a conversation, in order: who said what to whom, the offers and
counter-offers, every policy decision with its rule, and the outcome — drawn
as a sequence diagram, one column per agent. --format mermaid writes the
same as a Mermaid sequence diagram; --format html a page of its own, to open
in a browser or attach to a report.

Example:
   parley thread
   parley thread --agent vendor-b --verb ORDER
   parley thread --all --verb ERROR
   parley thread restock-widget-1
   parley thread restock-widget-1 --format html > deal.html`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "text", Usage: "text, mermaid or html"},
			&cli.BoolFlag{Name: "json", Usage: "the thread's ledger entries, or the list, as JSON"},
			&cli.BoolFlag{Name: "all", Usage: "list threads of notices or errors alone too"},
			&cli.StringSliceFlag{Name: "agent", Usage: "list only threads this agent took part in (repeat for more)"},
			&cli.StringSliceFlag{Name: "verb", Usage: "list only threads in which this verb was said (repeat for more)"},
		},
		Action: withRoot(0, 1, "at most one thread ID", func(c *cli.Context, e *env) error {
			id := c.Args().First()
			if id == "" {
				return listThreads(c, e)
			}
			if c.IsSet("all") || c.IsSet("agent") || c.IsSet("verb") {
				return usageError{errors.New("--all, --agent and --verb filter the list of threads, not one thread")}
			}
			return withLookup(e, func(l lookup) error { return showThread(c, e, l, id) })
		}),
	}
}

// listThreads prints the list of threads.
func listThreads(c *cli.Context, e *env) error {
	entries, err := readLedger(e.root)
	if err != nil {
		return err
	}
	verbs, err := e.filters(c)
	if err != nil {
		return err
	}
	list, quiet := filterThreads(threadList(entries), c.StringSlice("agent"), verbs, c.Bool("all"))
	if c.Bool("json") {
		return printJSON(e.stdout, list)
	}
	filtered := c.IsSet("agent") || c.IsSet("verb")
	switch {
	case len(list) == 0 && quiet > 0:
		fmt.Fprintf(e.stdout, "no thread but %d of notices or errors alone (--all lists them)\n", quiet)
		return nil
	case len(list) == 0 && filtered:
		fmt.Fprintln(e.stdout, "no thread matches")
		return nil
	}
	if err := printThreadList(e.stdout, list, e.now()); err != nil {
		return err
	}
	if quiet > 0 {
		fmt.Fprintf(e.stdout, "and %d thread(s) of notices or errors alone (--all lists them)\n", quiet)
	}
	return nil
}

// showThread prints one thread, its lines found through l.
func showThread(c *cli.Context, e *env, l lookup, id string) error {
	lines, err := l.Thread(id)
	if err != nil {
		return err
	}
	var steps []mailbox.Entry
	for _, x := range lines {
		if x.Event == mailbox.EventDelivered || x.Event == "decision" && x.Decision != "allow" ||
			x.Event == mailbox.EventRejected || x.Event == mailbox.EventBounced {
			steps = append(steps, x)
		}
	}
	if len(steps) == 0 {
		hint := "parley thread lists them"
		if guess := suggest(id, threadNames(l)); guess != "" {
			hint = "did you mean " + guess + "? " + hint
		}
		return withHint(fmt.Errorf("no thread %q in the ledger", id), hint)
	}
	if c.Bool("json") {
		return printJSON(e.stdout, steps)
	}
	switch c.String("format") {
	case "text":
		return drawThread(e.stdout, id, steps)
	case "mermaid":
		return mermaidThread(e.stdout, steps)
	case "html":
		return htmlThread(e.stdout, id, steps)
	}
	return usageError{fmt.Errorf("--format is text, mermaid or html, not %q", c.String("format"))}
}

type threadSummary struct {
	Thread   string    `json:"thread"`
	Started  time.Time `json:"started"`
	Last     time.Time `json:"last"`
	Messages int       `json:"messages"`
	Agents   []string  `json:"agents"`
	LastWord string    `json:"last_word"`
	Verbs    []string  `json:"verbs"` // said in it, in the order first said
}

func threadList(entries []mailbox.Entry) []threadSummary {
	byID := map[string]*threadSummary{}
	var order []string
	for _, x := range entries {
		if x.Event != mailbox.EventDelivered || x.Thread == "" {
			continue
		}
		t := byID[x.Thread]
		if t == nil {
			t = &threadSummary{Thread: x.Thread, Started: x.Time}
			byID[x.Thread] = t
			order = append(order, x.Thread)
		}
		t.Last, t.Messages = x.Time, t.Messages+1
		if !contains(t.Verbs, x.Verb) {
			t.Verbs = append(t.Verbs, x.Verb)
		}
		for _, a := range []string{x.From, x.To} {
			if !contains(t.Agents, a) {
				t.Agents = append(t.Agents, a)
			}
		}
		t.LastWord = x.Verb + ": " + strings.TrimPrefix(x.Subject, x.Verb+": ")
	}
	out := make([]threadSummary, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out
}

// filterThreads keeps the threads in which one of agents took part and
// one of verbs was said (empty: any), and, unless all, those with more
// than notices and errors in them; it counts those it left out for that.
func filterThreads(list []threadSummary, agents, verbs []string, all bool) (out []threadSummary, quiet int) {
	out = []threadSummary{}
	for _, t := range list {
		if len(agents) > 0 && !slices.ContainsFunc(agents, func(a string) bool { return contains(t.Agents, a) }) {
			continue
		}
		if len(verbs) > 0 && !slices.ContainsFunc(verbs, func(v string) bool { return contains(t.Verbs, v) }) {
			continue
		}
		if !all && !slices.ContainsFunc(t.Verbs, func(v string) bool { return v != string(mailbox.Notify) && v != string(mailbox.Error) }) {
			quiet++
			continue
		}
		out = append(out, t)
	}
	return out, quiet
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func printThreadList(w io.Writer, list []threadSummary, now time.Time) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no threads yet")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "THREAD\tSTARTED\tLAST\tMESSAGES\tLAST WORD")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s ago\t%s ago\t%d\t%s\n", t.Thread, age(now.Sub(t.Started)), age(now.Sub(t.Last)), t.Messages, t.LastWord)
	}
	return tw.Flush()
}

// participants are the agents of a thread, in the order they first speak
// or are spoken to.
func participants(steps []mailbox.Entry) []string {
	var out []string
	for _, x := range steps {
		for _, a := range []string{x.From, x.To, x.Agent} {
			if a != "" && !contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

func money(x mailbox.Entry) string {
	if x.Amount == "" {
		return ""
	}
	return x.Amount + " " + x.Currency
}

// drawThread draws the thread as a sequence diagram in text: a column per
// agent, an arrow per message, and the policy's word beside the agent it
// stopped.
func drawThread(w io.Writer, id string, steps []mailbox.Entry) error {
	agents := participants(steps)
	col := 0
	for _, a := range agents {
		col = max(col, len(a)+2)
	}
	col = max(col, 14)
	center := func(i int) int { return i*col + col/2 }
	width := len(agents) * col
	fmt.Fprintf(w, "thread %s: %d steps, %s to %s\n\n", id, len(steps), steps[0].Time.UTC().Format(time.RFC3339), steps[len(steps)-1].Time.UTC().Format(time.RFC3339))
	var head strings.Builder
	for _, a := range agents {
		pad := col - len(a)
		head.WriteString(strings.Repeat(" ", pad/2) + a + strings.Repeat(" ", pad-pad/2))
	}
	fmt.Fprintln(w, strings.TrimRight(head.String(), " "))
	lifelines := func() []byte {
		row := []byte(strings.Repeat(" ", width))
		for i := range agents {
			row[center(i)] = '|'
		}
		return row
	}
	fmt.Fprintln(w, strings.TrimRight(string(lifelines()), " "))
	index := func(a string) int {
		for i, x := range agents {
			if x == a {
				return i
			}
		}
		return 0
	}
	for _, x := range steps {
		row := lifelines()
		var note string
		switch x.Event {
		case mailbox.EventDelivered:
			from, to := index(x.From), index(x.To)
			if from == to { // a message to oneself: a mark on its own lifeline
				row[center(from)] = 'o'
				note = strings.TrimSpace(x.Verb + " " + x.Subject + "  " + money(x))
				break
			}
			a, b := center(from), center(to)
			if a > b {
				a, b = b, a
			}
			for i := a + 1; i < b; i++ {
				row[i] = '-'
			}
			label := x.Verb
			if from < to {
				row[b-1] = '>'
				copy(row[a+2:], label[:max(0, min(len(label), b-a-4))])
			} else {
				row[a+1] = '<'
				copy(row[a+3:], label[:max(0, min(len(label), b-a-4))])
			}
			note = strings.TrimSpace(x.Subject + "  " + money(x))
		default:
			i := center(index(x.Agent))
			row[i] = '*'
			note = fmt.Sprintf("%s: %s %s to %s: %s by %s — %s", x.Agent, x.Event, x.Verb, x.To, x.Decision, x.Rule, firstLine(x.Reason))
			if x.Event != "decision" {
				note = fmt.Sprintf("%s: %s %s — %s", x.Agent, x.Event, x.Verb, firstLine(x.Reason))
			}
		}
		fmt.Fprintf(w, "%s  %s\n", string(row), note)
	}
	return nil
}

func mermaidThread(w io.Writer, steps []mailbox.Entry) error {
	fmt.Fprintln(w, "sequenceDiagram")
	// Agents go by aliases: Mermaid reads "vendor-x->>" as vendor and a
	// cross arrow, and some names are its keywords.
	alias := map[string]string{}
	for i, a := range participants(steps) {
		alias[a] = fmt.Sprintf("A%d", i+1)
		fmt.Fprintf(w, "    participant %s as %s\n", alias[a], a)
	}
	clean := strings.NewReplacer(";", ",", "#", "", "\n", " ")
	for _, x := range steps {
		switch x.Event {
		case mailbox.EventDelivered:
			label := strings.Join(strings.Fields(x.Verb+" "+money(x)+" "+strings.TrimPrefix(x.Subject, x.Verb+": ")), " ")
			fmt.Fprintf(w, "    %s->>%s: %s\n", alias[x.From], alias[x.To], clean.Replace(label))
		case "decision":
			fmt.Fprintf(w, "    Note over %s: policy %s %s by %s\n", alias[x.Agent], x.Decision, x.Verb, x.Rule)
		default:
			fmt.Fprintf(w, "    Note over %s: %s %s\n", alias[x.Agent], x.Event, clean.Replace(firstLine(x.Reason)))
		}
	}
	return nil
}

var threadPage = htmltemplate.Must(htmltemplate.New("thread").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>parley thread {{.ID}}</title>
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.3em}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f4f4f4}
tr.policy td{background:#fff7e0;font-style:italic}
td.money{white-space:nowrap;text-align:right}
.verb{font-weight:600}
footer{margin-top:2em;color:#777;font-size:.85em}
</style></head><body>
<h1>Thread {{.ID}}</h1>
<p>{{len .Steps}} steps, from {{.First}} to {{.Last}}; agents: {{range $i, $a := .Agents}}{{if $i}}, {{end}}{{$a}}{{end}}.</p>
<table>
<tr><th>time (UTC)</th><th>from</th><th>to</th><th>verb</th><th>amount</th><th>what</th></tr>
{{range .Steps}}{{if eq .Event "delivered"}}<tr class="message"><td>{{.Time.UTC.Format "15:04:05.000"}}</td><td>{{.From}}</td><td>{{.To}}</td><td class="verb">{{.Verb}}</td><td class="money">{{if .Amount}}{{.Amount}} {{.Currency}}{{end}}</td><td>{{.Subject}}</td></tr>
{{else}}<tr class="policy"><td>{{.Time.UTC.Format "15:04:05.000"}}</td><td>{{.Agent}}</td><td>{{.To}}</td><td class="verb">{{.Verb}}</td><td class="money">{{if .Amount}}{{.Amount}} {{.Currency}}{{end}}</td><td>{{.Event}}{{if .Decision}}: {{.Decision}} by {{.Rule}}{{end}} — {{.Reason}}</td></tr>
{{end}}{{end}}</table>
<footer>From the parley ledger: every step above is a line of ledger.jsonl, chained by hash.</footer>
</body></html>
`))

func htmlThread(w io.Writer, id string, steps []mailbox.Entry) error {
	return threadPage.Execute(w, map[string]any{
		"ID": id, "Steps": steps, "Agents": participants(steps),
		"First": steps[0].Time.UTC().Format(time.RFC3339), "Last": steps[len(steps)-1].Time.UTC().Format(time.RFC3339),
	})
}

// threadsOf are the threads the ledger names, each once.
func threadsOf(entries []mailbox.Entry) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range entries {
		if x.Thread != "" && !seen[x.Thread] {
			seen[x.Thread] = true
			out = append(out, x.Thread)
		}
	}
	return out
}
