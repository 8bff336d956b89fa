package policy

import (
	"path"
	"testing"
)

// TestGlobPlain: glob's shortcut for a pattern without wildcards gives
// path.Match's answer.
func TestGlobPlain(t *testing.T) {
	names := []string{"", "procurement", "vendor-a", "vendor-*", "a/b", "vendor-a ", "Vendor-a", "vendör", "*", "[a]", `\a`, "a?"}
	for _, p := range names {
		for _, n := range names {
			want, _ := path.Match(p, n)
			if got := glob(p, n); got != want {
				t.Errorf("glob(%q, %q) = %v, path.Match says %v", p, n, got, want)
			}
		}
	}
}

func FuzzGlob(f *testing.F) {
	f.Add("vendor-a", "vendor-a")
	f.Add("vendor-*", "vendor-b")
	f.Add("a/b", "a/b")
	f.Fuzz(func(t *testing.T, p, n string) {
		want, _ := path.Match(p, n)
		if got := glob(p, n); got != want {
			t.Errorf("glob(%q, %q) = %v, path.Match says %v", p, n, got, want)
		}
	})
}
