package agents

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parley-dev/parley/mailbox"
)

// The checks on a model's text beyond its numbers: the dates it names,
// and whether it is language at all. A tiny or overheated model can
// repeat a token until it is cut off, or emit a string of symbols and
// scripts ("bhhhdml捡/l捉|LlP"): such a text is refused, and the rules'
// text goes instead.

var months = "January|February|March|April|May|June|July|August|September|October|November|December|" +
	"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"

// A date in words: "December 11", "Dec. 11th, 2026", "11 December",
// "the 11th of December 2026".
var (
	monthDay = regexp.MustCompile(`(?i)\b(` + months + `)\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(\d{4})\b)?`)
	dayMonth = regexp.MustCompile(`(?i)\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(` + months + `)\b\.?(?:,?\s+(\d{4})\b)?`)
)

// datePhrase is one date a text names in words.
type datePhrase struct {
	start, end int
	month      time.Month
	day, year  int // year 0: not said
}

// datesIn finds the dates a text names with a month's name.
func datesIn(text string) []datePhrase {
	var out []datePhrase
	add := func(loc []int, mi, di, yi int) {
		part := func(i int) string {
			if loc[2*i] < 0 {
				return ""
			}
			return text[loc[2*i]:loc[2*i+1]]
		}
		month := monthOf(part(mi))
		day, _ := strconv.Atoi(part(di))
		year, _ := strconv.Atoi(part(yi))
		out = append(out, datePhrase{start: loc[0], end: loc[1], month: month, day: day, year: year})
	}
	for _, loc := range monthDay.FindAllStringSubmatchIndex(text, -1) {
		add(loc, 1, 2, 3)
	}
	for _, loc := range dayMonth.FindAllStringSubmatchIndex(text, -1) {
		add(loc, 2, 1, 3)
	}
	return out
}

// monthOf is the month a name or its abbreviation says.
func monthOf(name string) time.Month {
	name = strings.ToLower(name)
	for m := time.January; m <= time.December; m++ {
		if strings.HasPrefix(strings.ToLower(m.String()), name[:min(3, len(name))]) {
			return m
		}
	}
	return 0
}

// withoutDates returns text with every date it names in words blanked
// out, when each is a day the message's fields carry (its delivery day,
// its expiry); else an error naming the date it does not carry.
func withoutDates(text string, m *mailbox.Message) (string, error) {
	var days []time.Time
	for _, t := range []time.Time{m.DeliverBy, m.Expires} {
		if !t.IsZero() {
			days = append(days, t.UTC())
		}
	}
	b := []byte(text)
	for _, d := range datesIn(text) {
		ok := false
		for _, t := range days {
			if t.Month() == d.month && t.Day() == d.day && (d.year == 0 || t.Year() == d.year) {
				ok = true
			}
		}
		if !ok {
			return "", fmt.Errorf("the text names the date %q, which the message does not carry", text[d.start:d.end])
		}
		for i := d.start; i < d.end; i++ {
			b[i] = ' '
		}
	}
	return string(b), nil
}

// notLanguage says why a text is not language a person would write, or
// nil: a unit of one to four characters repeated six times or more in a
// row ("l/l/l/l/l/l/"), a run of four or more symbols, or letters of more
// than one script.
func notLanguage(text string) error {
	rs := []rune(text)
	for unit := 1; unit <= 4; unit++ {
		for i := 0; i+unit <= len(rs); i++ {
			n := 1
			for j := i + unit; j+unit <= len(rs) && slices.Equal(rs[j:j+unit], rs[i:i+unit]); j += unit {
				n++
			}
			if n >= 6 && !allSpace(rs[i:i+unit]) {
				return fmt.Errorf("the text repeats %q %d times", string(rs[i:i+unit]), n)
			}
		}
	}
	run := 0
	for _, r := range rs {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsSpace(r) || r == '.' {
			run = 0
			continue
		}
		if run++; run >= 4 {
			return fmt.Errorf("the text has a run of symbols")
		}
	}
	scripts := map[string]bool{}
	for _, r := range rs {
		if !unicode.IsLetter(r) {
			continue
		}
		scripts[scriptOf(r)] = true
	}
	if len(scripts) > 1 {
		return fmt.Errorf("the text mixes scripts")
	}
	return nil
}

func allSpace(rs []rune) bool {
	for _, r := range rs {
		if !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// scriptOf names the script of a letter, among those a model mixes.
func scriptOf(r rune) string {
	for _, s := range []struct {
		name  string
		table *unicode.RangeTable
	}{
		{"Latin", unicode.Latin}, {"Han", unicode.Han}, {"Cyrillic", unicode.Cyrillic}, {"Greek", unicode.Greek},
		{"Arabic", unicode.Arabic}, {"Hebrew", unicode.Hebrew}, {"Hiragana", unicode.Hiragana}, {"Katakana", unicode.Katakana},
		{"Hangul", unicode.Hangul}, {"Thai", unicode.Thai}, {"Devanagari", unicode.Devanagari},
	} {
		if unicode.Is(s.table, r) {
			return s.name
		}
	}
	if r < utf8.RuneSelf {
		return "Latin"
	}
	return "other"
}
