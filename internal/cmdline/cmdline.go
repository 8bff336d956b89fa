// Package cmdline writes the parley commands that parley prints — in hints,
// in the demo, in the messages agents send the human — so that each runs as
// printed, pasted into a POSIX shell in the directory parley ran in.
//
// Invariants: a command for the default root (./mailboxes) names no root, as
// a person types it; a command for any other root names it with --root, as
// an absolute path, so that it also runs from another directory (a message
// is read later, from anywhere); every word that a shell would split or
// expand is single-quoted.
//
// Code that does not know the root (a role's pure logic, an error's hint
// deep in a package) writes its commands for the default root; the edge that
// knows the root (the agent's runtime, the CLI) passes the text through
// ForRoot.
package cmdline

import (
	"path/filepath"
	"regexp"
	"strings"
)

// DefaultRoot is the root parley uses when none is named (--root,
// PARLEY_ROOT).
const DefaultRoot = "mailboxes"

// Commands are parley's commands: the words after "parley" that ForRoot
// recognises as a command line. cmd/parley's tests check that the list is
// the CLI's.
var Commands = []string{
	"init", "demo", "up", "agent", "send", "compose", "inbox", "watch",
	"approve", "deny", "status", "books", "thread", "why", "tail", "ledger",
	"policy", "pause", "resume", "keys", "hooks", "doctor", "replay",
	"simulate", "bridge", "version",
}

// Render is the command line "parley ARGS..." for root.
func Render(root string, args ...string) string {
	var b strings.Builder
	b.WriteString("parley")
	if flag := rootFlag(root); flag != "" {
		b.WriteString(flag)
	}
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(Quote(a))
	}
	return b.String()
}

// ForRoot rewrites every parley command in text, written for the default
// root ("parley approve T"), into one for root ("parley --root /r approve
// T"). Other uses of the word ("parley reads only regular files", a
// command that names its root already) and requests for help ("parley
// tail --help", the same on every root) are left as they are.
func ForRoot(root, text string) string {
	flag := rootFlag(root)
	if flag == "" {
		return text
	}
	var b strings.Builder
	last := 0
	for _, m := range commandRE.FindAllStringSubmatchIndex(text, -1) {
		at := m[3] // after the character before "parley"
		if helpRE.MatchString(text[m[1]:]) {
			continue
		}
		b.WriteString(text[last:at])
		b.WriteString("parley" + flag)
		last = at + len("parley")
	}
	b.WriteString(text[last:])
	return b.String()
}

var (
	commandRE = regexp.MustCompile(`(^|[^\w./-])parley (` + strings.Join(Commands, "|") + `)\b`)
	helpRE    = regexp.MustCompile(`^( [a-z][a-z-]*)* --help\b`)
)

// IsDefault reports whether root is the default root of the directory parley
// runs in.
func IsDefault(root string) bool {
	if root == "" || filepath.Clean(root) == DefaultRoot {
		return true
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return false
	}
	def, err := filepath.Abs(DefaultRoot)
	return err == nil && abs == def
}

// rootFlag is " --root DIR" for root, or "" for the default root.
func rootFlag(root string) string {
	if IsDefault(root) {
		return ""
	}
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return " --root " + Quote(root)
}

// Quote is word as a POSIX shell reads it back: as it is when no character
// in it is special, else in single quotes.
func Quote(word string) string {
	if word != "" && strings.Trim(word, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return word
	}
	return "'" + strings.ReplaceAll(word, "'", `'\''`) + "'"
}
