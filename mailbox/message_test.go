package mailbox

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with the file at path, or writes it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestParseExamples(t *testing.T) {
	files, _ := filepath.Glob("../testdata/messages/*.msg")
	if len(files) < len(Verbs) {
		t.Fatalf("found %d examples, want one per verb at least", len(files))
	}
	seen := map[Verb]bool{}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			seen[m.Verb] = true
			out := m.Marshal()
			golden(t, strings.TrimSuffix(file, ".msg")+".golden", out)
			m2, err := Parse(out)
			if err != nil {
				t.Fatalf("Parse(Marshal): %v", err)
			}
			if again := m2.Marshal(); !bytes.Equal(again, out) {
				t.Errorf("Marshal(Parse(Marshal(m))) differs:\n%s\n---\n%s", again, out)
			}
		})
	}
	for _, v := range Verbs {
		if !seen[v] {
			t.Errorf("no example of %s under testdata/messages", v)
		}
	}
}

func TestParseFields(t *testing.T) {
	data, err := os.ReadFile("../testdata/messages/quote.msg")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Version", m.Version, "1"},
		{"ID", m.ID, "<1764151260.M200000P4244Q3.vendor-b@parley>"},
		{"Date", m.Date, time.Date(2026, 11, 26, 10, 1, 0, 0, time.UTC)},
		{"From", m.From, "vendor-b"},
		{"To", m.To, "procurement"},
		{"Thread", m.Thread, "restock-widget-0001"},
		{"InReplyTo", m.InReplyTo, "<1764151230.M150000P4242Q2.procurement@parley>"},
		{"Verb", m.Verb, Quote},
		{"Item", m.Item, "widget"},
		{"Quantity", m.Quantity, int64(500)},
		{"UnitPrice", m.UnitPrice.String(), "5.10 USD"},
		{"Amount", m.Amount.String(), "2550.00 USD"},
		{"DeliverBy", m.DeliverBy, time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)},
		{"Expires", m.Expires, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)},
		{"Body", m.Body, "We can ship from stock.\n"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseTolerant(t *testing.T) {
	data, err := os.ReadFile("../testdata/messages/tolerant-crlf-folded.msg")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Subject, "APPROVED: go ahead with the gadget order"; got != want {
		t.Errorf("folded Subject = %q, want %q", got, want)
	}
	if got, want := m.Date, time.Date(2026, 11, 26, 10, 4, 40, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Date = %v, want %v (in UTC)", got, want)
	}
	if v, ok := m.Get("x-mailer"); !ok || v != "vim" {
		t.Errorf(`Get("x-mailer") = %q, %v; want "vim", true`, v, ok)
	}
	if got, want := m.Amount.String(), "7200.00 USD"; got != want {
		t.Errorf("Amount = %q, want %q", got, want)
	}
	if got, want := m.Body, "Approved.\n"; got != want {
		t.Errorf("Body = %q, want %q", got, want)
	}
}

// TestParseBOM takes a message saved with a UTF-8 byte order mark (as
// Notepad saves it) as the same message, signature and all.
func TestParseBOM(t *testing.T) {
	data, err := os.ReadFile("../testdata/messages/tolerant-crlf-folded.msg")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(append([]byte("\ufeff"), data...))
	if err != nil {
		t.Fatalf("Parse with a BOM: %v", err)
	}
	if got, want := string(m.Marshal()), string(plain.Marshal()); got != want {
		t.Errorf("with a BOM it reads\n%s\nwant\n%s", got, want)
	}
	// A BOM anywhere else is no header's.
	if _, err := Parse(append([]byte("From: human\n\ufeff"), data...)); err == nil {
		t.Error("a BOM after the first line was taken")
	}
}

// TestMalformed checks every file of the malformed corpus against its exact
// error, in testdata/malformed/NAME.err.
func TestMalformed(t *testing.T) {
	files, _ := filepath.Glob("../testdata/malformed/*.msg")
	if len(files) < 20 {
		t.Fatalf("found %d malformed examples", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(data)
			if err == nil {
				err = m.Validate()
			}
			if err == nil {
				t.Fatalf("no error for %s", file)
			}
			out := err.Error() + "\n"
			var pe *ParseError
			if errors.As(err, &pe) {
				if pe.Hint == "" {
					t.Errorf("%v: no hint says how to fix it", err)
				}
				out += "hint: " + pe.Hint + "\n"
			}
			golden(t, strings.TrimSuffix(file, ".msg")+".err", []byte(out))
		})
	}
}

func TestParseErrorKinds(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		line    int
		header  string
		version bool
	}{
		{"bad price on line 4", "From: a\nTo: b\nVerb: QUOTE\nUnit-Price: 4,80 USD\n\n", 4, "Unit-Price", false},
		{"duplicate names second line", "Verb: QUOTE\nverb: ORDER\n\n", 2, "Verb", false},
		{"not a header", "From: a\ngarbage\n", 2, "", false},
		{"version 2 is ErrVersion", "Parley: 2\nFrom: a\n\n", 0, "", true},
		{"version 1.3 is spoken", "Parley: 1.3\nFrom: a\n\n", -1, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.in))
			if tt.line < 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if tt.version {
				if !errors.Is(err, ErrVersion) {
					t.Fatalf("Parse err = %v, want ErrVersion", err)
				}
				if m == nil || m.From != "a" {
					t.Fatalf("Parse with ErrVersion returned %+v, want the headers read", m)
				}
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse err = %v, want *ParseError", err)
			}
			if pe.Line != tt.line || pe.Header != tt.header {
				t.Errorf("ParseError at line %d header %q, want line %d header %q", pe.Line, pe.Header, tt.line, tt.header)
			}
		})
	}
}

func TestMoney(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"4.80 USD", "4.80 USD", false},
		{"4.8 USD", "4.80 USD", false},
		{"4.800 USD", "4.80 USD", false},
		{"4.805 USD", "4.805 USD", false},
		{"2400 USD", "2400.00 USD", false},
		{"1200 JPY", "1200 JPY", false},
		{"1.5 KWD", "1.500 KWD", false},
		{"0.10 EUR", "0.10 EUR", false},
		{"4,80 USD", "", true},
		{"4.80", "", true},
		{"USD 4.80", "", true},
		{"1e3 USD", "", true},
		{".5 USD", "", true},
		{"5. USD", "", true},
		{"4.80 US", "", true},
		{"4.80 usd", "", true},
		{"Inf USD", "", true},
		{"0x10 USD", "", true},
		{"1234567890123456 USD", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := ParseMoney(tt.in)
			if tt.err {
				if err == nil {
					t.Fatalf("ParseMoney(%q) = %v, want an error", tt.in, m)
				}
				if !errors.Is(err, ErrMoney) {
					t.Errorf("ParseMoney(%q) err = %v, want it to wrap ErrMoney", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMoney(%q): %v", tt.in, err)
			}
			if got := m.String(); got != tt.want {
				t.Errorf("ParseMoney(%q).String() = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMoneyArithmeticIsExact(t *testing.T) {
	// 0.1 + 0.2 is the classic float64 trap: exact decimals must say 0.30.
	a, b := MustMoney("0.10 USD"), MustMoney("0.20 USD")
	sum, err := a.Add(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sum.String(), "0.30 USD"; got != want {
		t.Errorf("0.10+0.20 = %s, want %s", got, want)
	}
	if got, want := MustMoney("4.80 USD").Times(500).String(), "2400.00 USD"; got != want {
		t.Errorf("4.80×500 = %s, want %s", got, want)
	}
	if _, err := a.Add(MustMoney("1.00 EUR")); err == nil {
		t.Error("adding USD to EUR succeeded, want an error")
	}
	if _, err := a.Cmp(MustMoney("1.00 EUR")); err == nil {
		t.Error("comparing USD with EUR succeeded, want an error")
	}
}

// FuzzParse checks that no input makes Parse panic, and that whatever it
// accepts is written canonically: Marshal(Parse(Marshal(m))) == Marshal(m).
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"../testdata/messages/*.msg", "../testdata/malformed/*.msg"} {
		files, _ := filepath.Glob(dir)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) && !errors.Is(err, ErrVersion) {
				t.Fatalf("Parse error %v is neither a *ParseError nor ErrVersion", err)
			}
			return
		}
		_ = m.Validate()
		out := m.Marshal()
		m2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(m)) = %v\n%s", err, out)
		}
		if again := m2.Marshal(); !bytes.Equal(again, out) {
			t.Fatalf("not canonical:\n%q\n%q", out, again)
		}
	})
}

// TestProtocolDocExamples keeps docs/PROTOCOL.md honest: every example
// message in it is valid and canonical, and every verb has one.
func TestProtocolDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```text\n")
	seen := map[Verb]bool{}
	for _, b := range blocks[1:] {
		text := b[:strings.Index(b, "```")]
		if !strings.HasPrefix(text, "Parley:") {
			continue
		}
		m, err := Parse([]byte(text))
		if err == nil {
			err = m.Validate()
		}
		if err != nil {
			t.Errorf("example in PROTOCOL.md: %v\n%s", err, text)
			continue
		}
		if got := string(m.Marshal()); got != text {
			t.Errorf("example in PROTOCOL.md is not canonical:\n%s\nwant\n%s", text, got)
		}
		seen[m.Verb] = true
	}
	for _, v := range Verbs {
		if !seen[v] {
			t.Errorf("PROTOCOL.md has no example of %s", v)
		}
	}
}

// TestMarshalWrapsLongLines: a body written with a line over RFC 5322's
// limit (a brain's long paragraph) is broken into lines that Parse
// accepts, at spaces where it can, and the result is canonical.
func TestMarshalWrapsLongLines(t *testing.T) {
	tests := []struct{ name, body string }{
		{"words", strings.Repeat("word ", 700) + "\n"},
		{"one word", strings.Repeat("x", 5000) + "\n"},
		{"utf-8", strings.Repeat("é", 1500) + "\nshort\n"},
		{"spaces", strings.Repeat(" ", 1200) + "x\n"},
		{"exactly the limit", strings.Repeat("y", 998) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Message{Version: Version, ID: "<w@x>", Date: t0, From: "a", To: "b", Thread: "t", Verb: Notify, Body: tt.body}
			out := m.Marshal()
			m2, err := Parse(out)
			if err != nil {
				t.Fatalf("Parse(Marshal(m)) = %v", err)
			}
			if again := m2.Marshal(); !bytes.Equal(again, out) {
				t.Fatalf("not canonical")
			}
			if got, want := strings.ReplaceAll(strings.ReplaceAll(m2.Body, "\n", ""), " ", ""), strings.ReplaceAll(strings.ReplaceAll(tt.body, "\n", ""), " ", ""); got != want {
				t.Errorf("the text changed beyond its line breaks")
			}
		})
	}
}

// FuzzMarshalBody: whatever body a brain writes, Marshal makes a message
// Parse reads, canonically.
func FuzzMarshalBody(f *testing.F) {
	f.Add(strings.Repeat("word ", 700))
	f.Add(strings.Repeat("é", 1500))
	f.Fuzz(func(t *testing.T, body string) {
		if !utf8.ValidString(body) || strings.ContainsFunc(body, func(r rune) bool { return r < 32 && r != '\n' && r != '\t' }) {
			return
		}
		m := &Message{Version: Version, ID: "<w@x>", Date: t0, From: "a", To: "b", Thread: "t", Verb: Notify, Body: body}
		out := m.Marshal()
		m2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(m)) = %v", err)
		}
		if again := m2.Marshal(); !bytes.Equal(again, out) {
			t.Fatalf("not canonical")
		}
	})
}

// TestDecimalFast: Decimal's integer path writes what Normalize and
// StringFixed write, in every currency's minor units.
func TestDecimalFast(t *testing.T) {
	values := []string{"0", "0.00", "4.8", "4.80", "4.805", "-4.805", "1200", "1200.000", "0.001", "-0.01", "0.0000001",
		"123456789012.34", "999999999999999", "9999999999999999", "1e3", "-7", "10.10", "5.000000000000000001"}
	for i := range 300 {
		values = append(values, decimal.New(int64(i*i*7919-150000), int32(-(i%9))).String())
	}
	for _, v := range values {
		d := decimal.RequireFromString(v)
		for _, minor := range []int32{0, 2, 3} {
			places := minor
			if exp := -d.Normalize().Exponent(); exp > places {
				places = exp
			}
			want := d.StringFixed(places)
			if got, ok := decimalFast(d, minor); ok && got != want {
				t.Errorf("decimalFast(%s, %d)=%q, want %q", v, minor, got, want)
			}
		}
	}
}
