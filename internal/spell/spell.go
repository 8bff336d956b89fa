// Package spell finds what a person probably meant by a word that is not
// one of the words expected: a command, a flag, an agent, a verb. It
// guesses only when one option is near enough (a few edits), and never
// guesses a word from one much shorter.
package spell

import "strings"

// Nearest is the option nearest to word, if near enough to be what was
// meant (an edit distance of at most a third of its length, and 2 at
// least), compared without case; "" when none is.
func Nearest(word string, options []string) string {
	best, bestD := "", -1
	w := strings.ToLower(word)
	for _, o := range options {
		d := distance(w, strings.ToLower(o))
		if bestD < 0 || d < bestD {
			best, bestD = o, d
		}
	}
	if bestD < 0 || bestD > max(2, len(word)/3) || bestD >= len(word) {
		return ""
	}
	return best
}

// distance is the Levenshtein distance, with a swap of two neighbours
// counted as one edit (the commonest typo: "stauts").
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
