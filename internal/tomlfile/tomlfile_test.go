package tomlfile

import (
	"errors"
	"testing"
)

func TestFind(t *testing.T) {
	data := "version = 1\n[[agent]]\nname = \"a\"\n[[agent]]\n  name = 'b'  # the second\n\"quoted\" = 3\n"
	tests := []struct {
		key, value string
		want       int
	}{
		{"version", "", 1},
		{"name", "", 3},
		{"name", "b", 5},
		{"name", "c", 0},
		{"quoted", "3", 6},
		{"missing", "", 0},
		{"na.me", "", 0}, // regexp characters in a key are literal
	}
	for _, tt := range tests {
		if got := Find(data, tt.key, tt.value); got != tt.want {
			t.Errorf("Find(%q, %q) = %d, want %d", tt.key, tt.value, got, tt.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	type C struct {
		N int `toml:"n"`
	}
	tests := []struct{ name, in, want string }{
		{"syntax on line 2", "n = 1\nx = [\n", "f.toml:2: "},
		{"type", "\nn = \"one\"\n", `f.toml:2: n: incompatible types`},
		{"unknown", "n = 1\n\nextra = true\n", `f.toml:3: unknown key "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c C
			_, err := Decode("f.toml", tt.in, &c)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode err = %v, want *Error", err)
			}
			if got := err.Error(); len(got) < len(tt.want) || got[:len(tt.want)] != tt.want {
				t.Errorf("Decode err = %q, want it to start with %q", got, tt.want)
			}
		})
	}
}

func TestLine(t *testing.T) {
	data := "[[role]]\nname = \"clerk\"\nsends = [\"NOTIFY\", \"SHOUT\"]\n"
	for s, want := range map[string]int{`"SHOUT"`: 3, `"clerk"`: 2, `"nothing"`: 0} {
		if got := Line(data, s); got != want {
			t.Errorf("Line(%s) = %d, want %d", s, got, want)
		}
	}
}
