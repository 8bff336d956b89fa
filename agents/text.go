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
	"github.com/shopspring/decimal"
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

// withoutDates returns text with every date it names blanked out — in
// words ("December 11"), as digits (2026-12-11) or as a day of the month
// ("the 11th", "the eleventh") — when each is a day the message's fields
// carry (its delivery day, its expiry, the day it is sent); else an error
// naming the date it does not carry.
func withoutDates(text string, m *mailbox.Message) (string, error) {
	var days []time.Time
	for _, t := range []time.Time{m.DeliverBy, m.Expires, m.Date} {
		if !t.IsZero() {
			days = append(days, t.UTC())
		}
	}
	carried := func(month time.Month, day, year int) bool {
		for _, t := range days {
			if (month == 0 || t.Month() == month) && t.Day() == day && (year == 0 || t.Year() == year) {
				return true
			}
		}
		return false
	}
	b := []byte(text)
	blank := func(start, end int) {
		for i := start; i < end; i++ {
			b[i] = ' '
		}
	}
	for _, d := range datesIn(text) {
		if !carried(d.month, d.day, d.year) {
			return "", fmt.Errorf("the text names the date %q, which the message does not carry", text[d.start:d.end])
		}
		blank(d.start, d.end)
	}
	for _, loc := range isoDate.FindAllStringSubmatchIndex(string(b), -1) {
		t, err := time.Parse(time.DateOnly, text[loc[2]:loc[3]])
		if err != nil || !carried(t.Month(), t.Day(), t.Year()) {
			return "", fmt.Errorf("the text names the date %q, which the message does not carry", text[loc[0]:loc[1]])
		}
		blank(loc[0], loc[1])
	}
	for _, loc := range digitOrd.FindAllStringSubmatchIndex(string(b), -1) {
		day, _ := strconv.Atoi(text[loc[2]:loc[3]])
		if !carried(0, day, 0) {
			return "", fmt.Errorf("the text names the day %q, which the message does not carry", text[loc[0]:loc[1]])
		}
		blank(loc[0], loc[1])
	}
	for _, loc := range wordOrd.FindAllStringSubmatchIndex(string(b), -1) {
		day := ordinals[strings.ToLower(text[loc[4]:loc[5]])]
		if loc[2] >= 0 {
			day += smallNumbers[strings.ToLower(text[loc[2]:loc[3]])]
		} else if day <= 3 {
			continue
		}
		if !carried(0, int(day), 0) {
			return "", fmt.Errorf("the text names the day %q, which the message does not carry", text[loc[0]:loc[1]])
		}
		blank(loc[0], loc[1])
	}
	return string(b), nil
}

// notLanguage says why a text is not language a person would write, or
// nil: a unit of one to four characters repeated six times or more in a
// row ("l/l/l/l/l/l/"), a run of four or more symbols, more than one
// character in ten a symbol (not a letter, digit, space or common
// punctuation), no word of two letters, or letters of more than one script.
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
	// Mostly symbols ("^>l#:l?hWl."), or no word of two letters: not what
	// a person writes, however short.
	plain, word, longest := 0, 0, 0
	for _, r := range rs {
		if unicode.IsLetter(r) {
			word++
			longest = max(longest, word)
		} else {
			word = 0
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsSpace(r) || unicode.Is(unicode.Sc, r) || strings.ContainsRune(plainMarks, r) {
			plain++
		}
	}
	if symbols := len(rs) - plain; symbols*10 > len(rs) {
		return fmt.Errorf("the text is %d%% symbols", symbols*100/len(rs))
	}
	if longest < 2 {
		return fmt.Errorf("the text has no word")
	}
	// Letters of more than one script, but for codes in capitals ("5.10
	// USDで", "OK"), which people write in any script: a run of two or more
	// ASCII capitals.
	scripts := map[string]bool{}
	for i := 0; i < len(rs); {
		j := i
		for j < len(rs) && rs[j] < utf8.RuneSelf && unicode.IsLetter(rs[j]) {
			j++
		}
		if j > i { // a run of ASCII letters
			if j-i < 2 || strings.ToUpper(string(rs[i:j])) != string(rs[i:j]) {
				scripts["Latin"] = true
			}
			i = j
			continue
		}
		if unicode.IsLetter(rs[i]) {
			scripts[scriptOf(rs[i])] = true
		}
		i++
	}
	if len(scripts) > 1 {
		return fmt.Errorf("the text mixes scripts")
	}
	return nil
}

// plainMarks are the punctuation and signs people write in a plain
// message, markdown's emphasis and lists included ("**Accepted** - 500 @
// $5.10 each, 2% off"); currency signs count too.
const plainMarks = ".,;:!?'\"()[]-–—/%&@*+=#×…’“”«»、。，：（）「」"

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
		// Japanese writes Han, Hiragana and Katakana in one sentence, Korean
		// Hangul with Han: each is one script here.
		{"Latin", unicode.Latin}, {"CJK", unicode.Han}, {"Cyrillic", unicode.Cyrillic}, {"Greek", unicode.Greek},
		{"Arabic", unicode.Arabic}, {"Hebrew", unicode.Hebrew}, {"CJK", unicode.Hiragana}, {"CJK", unicode.Katakana},
		{"CJK", unicode.Hangul}, {"Thai", unicode.Thai}, {"Devanagari", unicode.Devanagari},
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

// Numbers written in words are numbers said: "five hundred widgets at five
// dollars and ten cents" states 500 and 5.10, and is checked like digits.
var (
	smallNumbers = map[string]int64{"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
		"eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
		"sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
		"fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "dozen": 12}
	scales = map[string]int64{"hundred": 100, "thousand": 1_000, "k": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
	// ordinals are the days of a month in words. Alone, "first", "second"
	// and "third" are words people use for other things ("a second look"),
	// so wordOrd takes them only after "twenty" or "thirty".
	ordinals = map[string]int64{"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10,
		"eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14, "fifteenth": 15, "sixteenth": 16,
		"seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "twentieth": 20, "thirtieth": 30}
	currencyWords = map[string]bool{"dollar": true, "dollars": true, "euro": true, "euros": true, "pound": true,
		"pounds": true, "bucks": true, "usd": true, "eur": true, "gbp": true}
)

// word is one word of a text and where it is.
type word struct {
	text       string // lower case
	start, end int
	apart      bool // set apart from the word before by more than spaces and hyphens ("a thousand, two")
}

// wordsOf splits a text into its words: runs of letters, hyphens joining
// them ("forty-two") kept apart as words of their own.
func wordsOf(text string) []word {
	out := make([]word, 0, len(text)/6+1) // about a word in six bytes: one allocation, not five
	start, apart := -1, false
	for i, r := range text {
		if unicode.IsLetter(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			out = append(out, word{strings.ToLower(text[start:i]), start, i, apart})
			start, apart = -1, false
		}
		if !unicode.IsSpace(r) && r != '-' {
			apart = true
		}
	}
	if start >= 0 {
		out = append(out, word{strings.ToLower(text[start:]), start, len(text), apart})
	}
	return out
}

// spelled is a number a text writes in words, and where.
type spelled struct {
	value      decimal.Decimal
	start, end int
}

// numbersInWords finds the numbers a text writes in words: "five hundred",
// "forty-two", "a thousand", "twelve point five", "five dollars and ten
// cents". A lone "one" ("the one you sent") or "a" is not a number.
func numbersInWords(text string) []spelled {
	if !maySpellNumbers(text) {
		return nil
	}
	return numbersInAllWords(text)
}

// maySpellNumbers reports whether text may write a number in words: one
// of its words is a small number or a scale — every number in words has
// one (wordNumber). It answers true for any text that is not all ASCII,
// whose letters lower-case in other ways. One pass without allocating,
// where splitting the words costs one each (TestNumbersInWordsShortcut):
// most texts a deal reads have no number in words.
func maySpellNumbers(text string) bool {
	var buf [16]byte
	n, long := 0, false
	end := func() bool {
		ok := !long && n > 0 && numberWords[string(buf[:n])]
		n, long = 0, false
		return ok
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= utf8.RuneSelf:
			return true
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
			if n == len(buf) {
				long = true
				continue
			}
			buf[n] = c | 0x20
			n++
		default:
			if end() {
				return true
			}
		}
	}
	return end()
}

// numberWords are the words one of which every number in words has: the
// small numbers and the scales.
var numberWords = func() map[string]bool {
	m := map[string]bool{}
	for w := range smallNumbers {
		m[w] = true
	}
	for w := range scales {
		m[w] = true
	}
	return m
}()

// numbersInAllWords is numbersInWords reading every word.
func numbersInAllWords(text string) []spelled {
	ws := wordsOf(text)
	var out []spelled
	for i := 0; i < len(ws); {
		v, j, ok := wordNumber(ws, i)
		if !ok {
			i++
			continue
		}
		// "five dollars and ten cents", "five dollars ten"
		k := j
		if k < len(ws) && currencyWords[ws[k].text] {
			k++
			if k < len(ws) && ws[k].text == "and" {
				k++
			}
			if c, l, ok := wordNumber(ws, k); ok && c.LessThan(decimal.NewFromInt(100)) {
				if l < len(ws) && (ws[l].text == "cents" || ws[l].text == "cent") {
					l++
				}
				v, j = v.Add(c.Shift(-2)), l
			}
		}
		out = append(out, spelled{v, ws[i].start, ws[j-1].end})
		i = j
	}
	return out
}

// wordNumber reads the number in words that starts at ws[i], and returns
// it with the index of the word after it: units after tens ("forty two"),
// scales multiplying what came before ("five hundred thousand"), "a" for
// one before a scale ("a thousand"), "and" after a scale ("one hundred and
// five"), and "point" followed by digits ("twelve point five").
func wordNumber(ws []word, i int) (decimal.Decimal, int, bool) {
	var total, current, last int64 // last: the word number said since the last scale
	seen, said := false, 0
	j := i
	for ; j < len(ws); j++ {
		w := ws[j].text
		if j > i && ws[j].apart {
			break
		}
		if n, ok := smallNumbers[w]; ok && w != "dozen" {
			if last != 0 && !(last >= 20 && last%10 == 0 && n < 10) {
				break // "five five", "twenty thirty": two numbers
			}
			current, last, seen, said = current+n, n, true, said+1
			continue
		}
		s, isScale := scales[w]
		if w == "dozen" {
			s, isScale = 12, true
		}
		if isScale && (seen || (j > i && ws[j-1].text == "a")) {
			if !seen {
				current = 1
			}
			if s < 1000 {
				current *= s
			} else {
				total, current = total+current*s, 0
			}
			last, seen, said = 0, true, said+1
			continue
		}
		if w == "a" && j == i && j+1 < len(ws) && (scales[ws[j+1].text] > 0 || ws[j+1].text == "dozen") {
			continue
		}
		if w == "and" && seen && last == 0 && j+1 < len(ws) && smallNumbers[ws[j+1].text] > 0 {
			continue // "one hundred and five"
		}
		break
	}
	if !seen {
		return decimal.Zero, i, false
	}
	v := decimal.NewFromInt(total + current)
	if j+1 < len(ws) && ws[j].text == "point" {
		frac, k := "", j+1
		for ; k < len(ws); k++ {
			n, ok := smallNumbers[ws[k].text]
			if !ok || n > 9 {
				break
			}
			frac += strconv.FormatInt(n, 10)
		}
		if frac != "" {
			f, _ := decimal.NewFromString("0." + frac)
			v, j, said = v.Add(f), k, said+1
		}
	}
	if said == 1 && ws[i].text == "one" {
		return decimal.Zero, i, false // "the one you sent"
	}
	return v, j, true
}

// Numbers are the numbers a text states, in digits or in words, but the
// dates and times it names (2026-12-03, 10:00, the 11th) and the digits of
// names ("restock-widget-1"): "5-6 days" states 5 and 6, "price:4.90"
// states 4.90, "1.2k" states 1200.
func Numbers(text string) []decimal.Decimal {
	var out []decimal.Decimal
	for _, n := range numbersIn(text) {
		out = append(out, n.value)
	}
	return out
}

// NumbersApart reports whether the numbers of subject + " " + body are
// the numbers of subject, then those of body, whatever body is: the join
// cannot make one number of two, nor set one aside. So a body said again
// and again under many subjects is read once (the simulator's leak
// check; TestNumbersApart, FuzzNumbersApart). It is so when subject is
// ASCII, says no number in words (no word that starts one), and ends in
// neither a digit (a scale word could follow: "5" "k"), a space, a
// hyphen, nor the word "a" ("a" "hundred").
func NumbersApart(subject string) bool {
	if subject == "" {
		return false
	}
	for i := 0; i < len(subject); i++ {
		if subject[i] >= utf8.RuneSelf {
			return false
		}
	}
	switch c := subject[len(subject)-1]; {
	case c >= '0' && c <= '9', c == '-', c == ' ', c == '\t', c == '\n', c == '\v', c == '\f', c == '\r':
		return false
	}
	if maySpellNumbers(subject) {
		return false
	}
	last := len(subject)
	for last > 0 && isASCIILetter(subject[last-1]) {
		last--
	}
	return !strings.EqualFold(subject[last:], "a")
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

var (
	isoDate    = regexp.MustCompile(`\b(\d{4}-\d{2}-\d{2})(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?\b`)
	clockTime  = regexp.MustCompile(`\b\d{1,2}:\d{2}(:\d{2})?\b`)
	digitOrd   = regexp.MustCompile(`(?i)\b(\d{1,2})(st|nd|rd|th)\b`)
	wordOrd    = regexp.MustCompile(`(?i)\b(?:(twenty|thirty)[- ])?(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth)\b`)
	digitScale = regexp.MustCompile(`(?i)^\s*(k\b|hundred\b|thousand\b|million\b|billion\b)`)
)

// setAside is which of isoDate, clockTime and digitOrd can match text at
// all: each needs a digit followed by '-', ':' or the first letter of
// "st", "nd", "rd", "th" (TestSetAside). One pass over the bytes is much cheaper than
// the regexps' backtracking, and most texts have none of the three (a
// simulated deal reads thousands of them: the leak check).
func setAside(text string) []*regexp.Regexp {
	var date, clock, ord bool
	for i := 0; i+1 < len(text); i++ {
		if text[i] < '0' || text[i] > '9' {
			continue
		}
		switch text[i+1] {
		case '-':
			date = true
		case ':':
			clock = true
		case 's', 'n', 'r', 't', 'S', 'N', 'R', 'T':
			ord = true
		default:
			// (?i) folds more than ASCII: "ſ" (U+017F) matches s.
			ord = ord || text[i+1] >= utf8.RuneSelf
		}
	}
	res := make([]*regexp.Regexp, 0, 3)
	for _, x := range []struct {
		re  *regexp.Regexp
		can bool
	}{{isoDate, date}, {clockTime, clock}, {digitOrd, ord}} {
		if x.can {
			res = append(res, x.re)
		}
	}
	return res
}

// scaleAt is digitScale's match at the start of text, tried only when the
// first letter after the spaces can begin a scale word.
func scaleAt(text string) []int {
	t := strings.TrimLeftFunc(text, unicode.IsSpace)
	if t == "" {
		return nil
	}
	switch c := t[0]; {
	case strings.IndexByte("khtmbKHTMB", c) >= 0, c >= utf8.RuneSelf: // (?i)k matches the Kelvin sign too
		return digitScale.FindStringSubmatchIndex(text)
	}
	return nil
}

// numbersIn finds the numbers a text states and where, in the order they
// come.
func numbersIn(text string) []spelled {
	var skip []bool // made when something is set aside: most texts have nothing
	for _, re := range setAside(text) {
		for _, loc := range re.FindAllStringIndex(text, -1) {
			if skip == nil {
				skip = make([]bool, len(text))
			}
			for i := loc[0]; i < loc[1]; i++ {
				skip[i] = true
			}
		}
	}
	skipped := func(i int) bool { return skip != nil && skip[i] }
	var out []spelled
	isNum := func(c byte) bool { return c >= '0' && c <= '9' || c == '.' || c == ',' }
	isName := func(c rune) bool { return unicode.IsLetter(c) || c == '_' }
	for i := 0; i < len(text); {
		if text[i] < '0' || text[i] > '9' || skipped(i) {
			i++
			continue
		}
		j := i
		for j < len(text) && isNum(text[j]) {
			j++
		}
		run := strings.TrimRight(text[i:j], ".,")
		end := i + len(run)
		// The digits of a name: after a letter ("v2"), or after a hyphen
		// that follows one ("restock-widget-1").
		before, _ := utf8.DecodeLastRuneInString(text[:i])
		name := isName(before)
		if before == '-' {
			b2, _ := utf8.DecodeLastRuneInString(text[:i-1])
			name = isName(b2)
		}
		if d, err := decimal.NewFromString(strings.ReplaceAll(run, ",", "")); err == nil && !name {
			if loc := scaleAt(text[end:]); loc != nil {
				d = d.Mul(decimal.NewFromInt(scales[strings.ToLower(text[end+loc[2]:end+loc[3]])]))
				end += loc[1]
			}
			out = append(out, spelled{d, i, end})
		}
		i = j
	}
	for _, w := range numbersInWords(text) {
		if !skipped(w.start) {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b spelled) int { return a.start - b.start })
	return out
}
