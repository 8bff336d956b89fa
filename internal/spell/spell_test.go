package spell

import "testing"

func TestNearest(t *testing.T) {
	options := []string{"status", "send", "inbox", "NOTIFY", "finance", "--json", "vendor-a", "vendor-b"}
	for _, tc := range []struct{ word, want string }{
		{"stauts", "status"},  // two letters swapped: one edit
		{"snd", "send"},       // one left out
		{"NOTIFIY", "NOTIFY"}, // one too many
		{"notify", "NOTIFY"},  // case does not count
		{"fiance", "finance"},
		{"--jsno", "--json"},
		{"frobnicate", ""}, // nothing near
		{"x", ""},          // too short to guess from
		{"vendor-z", "vendor-a"},
	} {
		if got := Nearest(tc.word, options); got != tc.want {
			t.Errorf("Nearest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
}
