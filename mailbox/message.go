package mailbox

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/parley-dev/parley/internal/spell"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Version is the protocol version this parley writes into the Parley header.
const Version = "1"

// Verb is what a message does: the one word a receiving agent acts on.
type Verb string

// The protocol's verbs; docs/PROTOCOL.md has an example of each.
const (
	Request   Verb = "REQUEST"
	Quote     Verb = "QUOTE"
	Counter   Verb = "COUNTER"
	Accept    Verb = "ACCEPT"
	Decline   Verb = "DECLINE"
	Approved  Verb = "APPROVED"
	Denied    Verb = "DENIED"
	Order     Verb = "ORDER"
	Confirmed Verb = "CONFIRMED"
	Paid      Verb = "PAID"
	Notify    Verb = "NOTIFY"
	Escalate  Verb = "ESCALATE"
	Error     Verb = "ERROR"
)

// Verbs lists every verb, in the order a deal uses them.
var Verbs = []Verb{Request, Quote, Counter, Accept, Decline, Approved, Denied,
	Order, Confirmed, Paid, Notify, Escalate, Error}

// Valid reports whether v is one of the protocol's verbs.
func (v Verb) Valid() bool {
	for _, k := range Verbs {
		if v == k {
			return true
		}
	}
	return false
}

// Header is one header field as it appeared, for headers parley does not
// interpret: they are kept, in order, and written back unchanged.
type Header struct {
	Name  string
	Value string
}

// Message is one parley message: RFC 5322 headers, a blank line, a body for
// people. Absent optional fields are zero values.
type Message struct {
	Version   string    // Parley: protocol version, "1"
	ID        string    // Message-ID, with its angle brackets
	Date      time.Time // Date
	From      string    // From: an agent name
	To        string    // To: an agent name
	Thread    string    // Thread: the deal this message belongs to
	InReplyTo string    // In-Reply-To: the Message-ID answered
	Verb      Verb      // Verb
	Item      string    // Item
	Quantity  int64     // Quantity: whole units, 0 when absent
	UnitPrice Money     // Unit-Price
	Amount    Money     // Amount: the total
	DeliverBy time.Time // Deliver-By: a calendar day, UTC midnight
	Expires   time.Time // Expires: the moment an answer is no longer useful
	Subject   string    // Subject: one line for people
	Extra     []Header  // unknown headers, kept in order
	Body      string    // the free text, LF line endings, ending in a newline when not empty

	lines map[string]int // where Parse found each protocol header, for errors
}

// field describes one protocol header: its canonical name, how to read it
// into a Message and how to write it back.
type field struct {
	name  string
	parse func(m *Message, v string) error
	write func(m *Message) string // "" when absent
	hint  string                  // how to write a good value
}

var (
	agentName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	threadID  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	msgID     = regexp.MustCompile(`^<[^<>@\s]+@[^<>@\s]+>$`)
)

// ValidName reports whether s can name an agent: lower-case letters, digits
// and hyphens, starting with a letter. The name is also its inbox folder.
func ValidName(s string) bool { return agentName.MatchString(s) }

const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

var fields = []field{
	{"Parley", func(m *Message, v string) error {
		if _, _, err := parseVersion(v); err != nil {
			return err
		}
		m.Version = v
		return nil
	}, func(m *Message) string { return m.Version }, "Parley: 1"},
	{"Message-ID", func(m *Message, v string) error {
		if !msgID.MatchString(v) {
			return errors.New("is not a message id")
		}
		m.ID = v
		return nil
	}, func(m *Message) string { return m.ID }, "Message-ID: <unique@host>, or leave it out and let parley send fill it in"},
	{"Date", func(m *Message, v string) error {
		t, err := mail.ParseDate(v)
		if err != nil {
			return errors.New("is not a date")
		}
		m.Date = t.UTC()
		return nil
	}, func(m *Message) string { return formatTime(m.Date, dateLayout) }, "Date: Thu, 26 Nov 2026 10:00:00 +0000, or leave it out"},
	{"From", func(m *Message, v string) error { return setName(&m.From, v) },
		func(m *Message) string { return m.From }, "From: an agent name such as procurement"},
	{"To", func(m *Message, v string) error { return setName(&m.To, v) },
		func(m *Message) string { return m.To }, "To: an agent name such as vendor-b"},
	{"Thread", func(m *Message, v string) error {
		if !threadID.MatchString(v) {
			return errors.New("is not a thread id")
		}
		m.Thread = v
		return nil
	}, func(m *Message) string { return m.Thread }, "Thread: letters, digits, '.', '_' and '-', such as restock-widget-0001"},
	{"In-Reply-To", func(m *Message, v string) error {
		if !msgID.MatchString(v) {
			return errors.New("is not a message id")
		}
		m.InReplyTo = v
		return nil
	}, func(m *Message) string { return m.InReplyTo }, "In-Reply-To: the Message-ID of the message answered, with its <>"},
	{"Verb", func(m *Message, v string) error {
		// In any case, as a person types it: the protocol writes it in
		// capitals (and signs it so).
		verb := Verb(strings.ToUpper(v))
		if !verb.Valid() {
			if guess := spell.Nearest(v, verbNames()); guess != "" {
				return fmt.Errorf("is not a verb (did you mean %s?)", guess)
			}
			return errors.New("is not a verb")
		}
		m.Verb = verb
		return nil
	}, func(m *Message) string { return string(m.Verb) }, "Verb: one of " + VerbList()},
	{"Item", func(m *Message, v string) error { m.Item = v; return nil },
		func(m *Message) string { return m.Item }, "Item: widget"},
	{"Quantity", func(m *Message, v string) error {
		q, err := strconv.ParseInt(v, 10, 64)
		if err != nil || q <= 0 || q > 1_000_000_000_000 || strings.HasPrefix(v, "+") {
			return errors.New("is not a whole positive number")
		}
		m.Quantity = q
		return nil
	}, func(m *Message) string {
		if m.Quantity == 0 {
			return ""
		}
		return strconv.FormatInt(m.Quantity, 10)
	}, "Quantity: 500"},
	{"Unit-Price", func(m *Message, v string) error { return setMoney(&m.UnitPrice, v) },
		func(m *Message) string { return m.UnitPrice.String() }, "Unit-Price: 4.80 USD"},
	{"Amount", func(m *Message, v string) error { return setMoney(&m.Amount, v) },
		func(m *Message) string { return m.Amount.String() }, "Amount: 2400.00 USD"},
	{"Deliver-By", func(m *Message, v string) error {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return errors.New("is not a day")
		}
		m.DeliverBy = t
		return nil
	}, func(m *Message) string { return formatTime(m.DeliverBy, time.DateOnly) }, "Deliver-By: 2026-12-03"},
	{"Expires", func(m *Message, v string) error {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return errors.New("is not a time")
		}
		m.Expires = t.UTC()
		return nil
	}, func(m *Message) string { return formatTime(m.Expires, time.RFC3339) }, "Expires: 2026-11-26T12:00:00Z"},
	{"Subject", func(m *Message, v string) error { m.Subject = v; return nil },
		func(m *Message) string { return m.Subject }, "Subject: one line for people"},
}

var fieldIndex = func() map[string]*field {
	idx := make(map[string]*field, len(fields))
	for i := range fields {
		if strings.HasPrefix(fields[i].hint, fields[i].name+":") {
			fields[i].hint = "for example " + fields[i].hint
		}
		idx[strings.ToLower(fields[i].name)] = &fields[i]
	}
	return idx
}()

// verbHint says what a Verb may be; made once, as Validate runs often.
var verbHint = "Verb: one of " + VerbList()

func verbNames() []string {
	names := make([]string, len(Verbs))
	for i, v := range Verbs {
		names[i] = string(v)
	}
	return names
}

// VerbList names the verbs, in order: "REQUEST, QUOTE, ...".
func VerbList() string {
	s := make([]string, len(Verbs))
	for i, v := range Verbs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

func formatTime(t time.Time, layout string) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(layout)
}

func setName(dst *string, v string) error {
	if !ValidName(v) {
		return errors.New("is not an agent name")
	}
	*dst = v
	return nil
}

func setMoney(dst *Money, v string) error {
	m, err := ParseMoney(v)
	if err != nil {
		return err
	}
	if m.Amount.IsNegative() {
		return errors.New("is negative")
	}
	*dst = m
	return nil
}

// CheckVersion says whether this parley speaks protocol version v
// ("MAJOR" or "MAJOR.MINOR"): major 1, any minor.
func CheckVersion(v string) error {
	major, _, err := parseVersion(v)
	if err != nil {
		return fmt.Errorf("protocol %q %w (write it as 1.1)", v, err)
	}
	if major != 1 {
		return fmt.Errorf("%w: %s (this parley speaks %s)", ErrVersion, v, Version)
	}
	return nil
}

// parseVersion reads "MAJOR" or "MAJOR.MINOR".
func parseVersion(v string) (major, minor int, err error) {
	maj, min, hasMinor := strings.Cut(v, ".")
	major, err = strconv.Atoi(maj)
	if err != nil || major < 0 || strings.HasPrefix(maj, "+") {
		return 0, 0, errors.New("is not a version")
	}
	if hasMinor {
		minor, err = strconv.Atoi(min)
		if err != nil || minor < 0 || strings.HasPrefix(min, "+") {
			return 0, 0, errors.New("is not a version")
		}
	}
	return major, minor, nil
}

// ParseError says where a message is malformed and how to fix it.
type ParseError struct {
	Line   int    // 1-based line of the header; 0 when the whole message is at fault
	Header string // canonical header name, "" when not about one header
	Msg    string // what is wrong
	Hint   string // how to fix it; not part of Error(), so it can go on a line of its own
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Header != "" {
		b.WriteString(e.Header + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrVersion is wrapped by the error Parse returns for a message in a major
// version of the protocol this parley does not speak; the caller answers it
// with an ERROR rather than silence.
var ErrVersion = errors.New("unsupported protocol version")

// utf8BOM is the byte order mark, U+FEFF, in UTF-8.
const utf8BOM = "\xef\xbb\xbf"

// maxLine is RFC 5322's limit on a line (section 2.1.1), without its
// CRLF: in the headers and in the body alike.
const maxLine = 998

// Parse reads a message. It is strict about the protocol's headers (each at
// most once, each well formed) and tolerant about the rest: unknown headers
// are kept, CRLF and LF both end a line, folded headers are unfolded.
//
// Parse does not require the headers that parley fills in for a person
// (Parley, Message-ID, Date, Thread): Root.Fill completes them, and Validate
// says what a message still lacks. On an error Parse also returns the
// headers it read before the fault, so that the caller can address an ERROR
// to the sender; for an unsupported major version the error wraps
// ErrVersion. A UTF-8 byte order mark at the start, which some editors
// write (Notepad), is passed over: it is no part of the first header, and
// a signature covers the message as parley writes it, without one.
func Parse(data []byte) (*Message, error) {
	data = bytes.TrimPrefix(data, []byte(utf8BOM))
	m := &Message{lines: map[string]int{}}
	seen := m.lines
	lineNo := 0
	rest := data
	var cur *Header
	curLine := 0
	flush := func() error {
		if cur == nil {
			return nil
		}
		h := *cur
		cur = nil
		h.Value = strings.TrimSpace(h.Value)
		f, known := fieldIndex[strings.ToLower(h.Name)]
		if !known {
			m.Extra = append(m.Extra, h)
			return nil
		}
		if first, dup := seen[f.name]; dup {
			return &ParseError{Line: curLine, Header: f.name,
				Msg: fmt.Sprintf("appears twice (first on line %d)", first), Hint: "keep one"}
		}
		seen[f.name] = curLine
		if h.Value == "" {
			return &ParseError{Line: curLine, Header: f.name, Msg: "is empty", Hint: f.hint}
		}
		if err := f.parse(m, h.Value); err != nil {
			return &ParseError{Line: curLine, Header: f.name,
				Msg: fmt.Sprintf("%q %v", h.Value, trimErr(err)), Hint: f.hint}
		}
		return nil
	}
	for {
		if len(rest) == 0 {
			if err := flush(); err != nil {
				return m, err
			}
			if lineNo == 0 {
				return m, &ParseError{Msg: "is empty", Hint: "a message is headers such as From: and Verb:, a blank line, then text"}
			}
			break // headers only, no body
		}
		lineNo++
		var line []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			if err := flush(); err != nil {
				return m, err
			}
			if err := checkBodyLines(rest, lineNo); err != nil {
				return m, err
			}
			m.Body = normalizeBody(rest)
			break
		}
		if len(line) > maxLine {
			return m, &ParseError{Line: lineNo, Msg: fmt.Sprintf("is %d characters long, over the limit of %d", len(line), maxLine),
				Hint: "fold a long header onto lines that start with a space, or move the text into the body"}
		}
		if !isText(line) {
			return m, &ParseError{Line: lineNo, Msg: "has a control character or is not UTF-8", Hint: "headers are plain text"}
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur == nil {
				return m, &ParseError{Line: lineNo, Msg: "starts with white space but continues no header",
					Hint: "only a folded header's continuation starts with a space; remove the indent"}
			}
			cur.Value += " " + strings.TrimSpace(string(line))
			continue
		}
		if err := flush(); err != nil {
			return m, err
		}
		name, value, ok := strings.Cut(string(line), ":")
		if !ok || name == "" || !isHeaderName(name) {
			hint := `a header is "Name: value"; leave one blank line between the headers and the body`
			return m, &ParseError{Line: lineNo, Msg: fmt.Sprintf("%q is not a header", truncate(string(line), 40)), Hint: hint}
		}
		cur = &Header{Name: name, Value: value}
		curLine = lineNo
	}
	if m.Version != "" {
		if major, _, _ := parseVersion(m.Version); major != 1 {
			return m, fmt.Errorf("%w: Parley %s (this parley speaks %s)", ErrVersion, m.Version, Version)
		}
	}
	return m, nil
}

// checkBodyLines applies the line limit to the body, which starts after
// line blank: a body of 50 MB on one line is not a message.
func checkBodyLines(body []byte, blank int) error {
	for n := blank + 1; len(body) > 0; n++ {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if l := len(bytes.TrimSuffix(line, []byte("\r"))); l > maxLine {
			return &ParseError{Line: n, Msg: fmt.Sprintf("is %d characters long, over the limit of %d (RFC 5322) that holds in the body too", l, maxLine),
				Hint: "break the text into lines; parley send and parley compose do it for you"}
		}
	}
	return nil
}

// wrapBody breaks the lines of a normalized body that are over the line
// limit: at the last space that keeps them within it, else (a word of a
// thousand characters) at the limit, between two UTF-8 characters. What a
// brain or a person wrote as one long paragraph is still a message.
func wrapBody(s string) string {
	if len(s) <= maxLine {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		line, rest, _ := strings.Cut(s, "\n")
		for len(line) > maxLine {
			cut := strings.LastIndexByte(line[:maxLine+1], ' ')
			next := cut + 1
			if cut <= 0 {
				cut = maxLine
				for cut > 0 && !utf8.RuneStart(line[cut]) {
					cut--
				}
				next = cut
			}
			b.WriteString(line[:cut])
			b.WriteByte('\n')
			line = line[next:]
		}
		b.WriteString(line)
		b.WriteByte('\n')
		s = rest
	}
	return b.String()
}

func trimErr(err error) string {
	s := err.Error()
	if errors.Is(err, ErrMoney) {
		s = strings.TrimPrefix(s, ErrMoney.Error()+": ")
		return "is not an amount: " + s
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// isHeaderName is RFC 5322's ftext: printable ASCII but the colon.
func isHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

func isText(b []byte) bool {
	for _, r := range string(b) {
		if r == 0xFFFD || (r < 32 && r != '\t') || r == 127 {
			return false
		}
	}
	return true
}

// normalizeBody drops carriage returns (CRLF becomes LF) and ends a
// non-empty body with exactly one newline, so that writing is canonical.
func normalizeBody(b []byte) string {
	s := strings.ReplaceAll(string(b), "\r", "")
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return s + "\n"
}

// Validate reports the first protocol rule a complete message breaks: the
// headers every delivered message carries, and the fields its verb needs.
func (m *Message) Validate() error {
	for _, need := range []struct {
		ok         bool
		name, hint string
	}{
		{m.Version != "", "Parley", "Parley: 1"},
		{m.ID != "", "Message-ID", "let parley send fill it in"},
		{!m.Date.IsZero(), "Date", "let parley send fill it in"},
		{m.From != "", "From", "From: the sending agent's name"},
		{m.To != "", "To", "To: the receiving agent's name"},
		{m.Thread != "", "Thread", "let parley send fill it in, or name the deal"},
		{m.Verb != "", "Verb", verbHint},
	} {
		if !need.ok {
			return &ParseError{Header: need.name, Msg: "is missing", Hint: need.hint}
		}
	}
	return m.checkVerbFields()
}

// verbNeeds are the fields each verb must carry.
var verbNeeds = map[Verb][]string{
	Quote:    {"Item", "Quantity", "Unit-Price"},
	Counter:  {"Item", "Quantity", "Unit-Price"},
	Order:    {"Item", "Quantity", "Amount"},
	Approved: {"Amount"},
	Paid:     {"Amount"},
}

// checkVerbFields holds the rules that tie fields to verbs: money comes with
// what it buys, and amounts agree with their unit price.
func (m *Message) checkVerbFields() error {
	have := func(h string) bool {
		switch h {
		case "Item":
			return m.Item != ""
		case "Quantity":
			return m.Quantity != 0
		case "Unit-Price":
			// A quote in words (a person's "we can do $1.2k for the lot")
			// is a quote: an agent with an Ollama brain reads the price
			// from its text.
			return !m.UnitPrice.IsZero() || (m.Verb == Quote && strings.TrimSpace(m.Body) != "")
		}
		return !m.Amount.IsZero()
	}
	for _, h := range verbNeeds[m.Verb] {
		if !have(h) {
			msg := fmt.Sprintf("is missing, and a %s needs it", m.Verb)
			if m.Verb == Quote && h == "Unit-Price" {
				msg += ", or its price in words in the text"
			}
			return &ParseError{Line: m.lines["Verb"], Header: h, Msg: msg, Hint: fieldIndex[strings.ToLower(h)].hint}
		}
	}
	if !m.UnitPrice.IsZero() && !m.Amount.IsZero() {
		if m.UnitPrice.Currency != m.Amount.Currency {
			return &ParseError{Line: m.lines["Amount"], Header: "Amount", Msg: fmt.Sprintf("is in %s but Unit-Price is in %s", m.Amount.Currency, m.UnitPrice.Currency),
				Hint: "write both in one currency"}
		}
		if m.Quantity != 0 && !m.UnitPrice.Times(m.Quantity).Amount.Equal(m.Amount.Amount) {
			return &ParseError{Line: m.lines["Amount"], Header: "Amount", Msg: fmt.Sprintf("%s is not Quantity × Unit-Price (%s)", m.Amount, m.UnitPrice.Times(m.Quantity)),
				Hint: "correct either, or leave Amount out"}
		}
	}
	return nil
}

// Marshal writes m canonically: the protocol's headers in a fixed order, then
// the unknown headers as they came, a blank line and the body, with LF line
// endings. Marshal(Parse(Marshal(m))) is byte-identical to Marshal(m).
func (m *Message) Marshal() []byte {
	var b bytes.Buffer
	b.Grow(512 + len(m.Body))
	for i := range fields {
		if v := fields[i].write(m); v != "" {
			b.WriteString(fields[i].name)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	for _, h := range m.Extra {
		b.WriteString(h.Name)
		b.WriteString(": ")
		b.WriteString(h.Value)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(wrapBody(normalizeBody([]byte(m.Body))))
	return b.Bytes()
}

// Get returns the value of an unknown header kept in Extra, matched without
// regard to case, and whether it was there.
func (m *Message) Get(name string) (string, bool) {
	for _, h := range m.Extra {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// Total is the money the message is about: Amount, or else Quantity ×
// Unit-Price (one unit when there is no Quantity); zero when it names none.
func (m *Message) Total() Money {
	if !m.Amount.IsZero() || m.UnitPrice.IsZero() {
		return m.Amount
	}
	return m.UnitPrice.Times(max(m.Quantity, 1))
}
