package cmdline

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRender(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		root string
		args []string
		want string
	}{
		{"default", "mailboxes", []string{"approve", "t1"}, "parley approve t1"},
		{"default with dot", "./mailboxes/", []string{"status"}, "parley status"},
		{"default absolute", filepath.Join(wd, "mailboxes"), []string{"status"}, "parley status"},
		{"empty is default", "", []string{"status"}, "parley status"},
		{"absolute", "/tmp/try", []string{"approve", "t1"}, "parley --root /tmp/try approve t1"},
		{"relative made absolute", "other", []string{"status"}, "parley --root " + filepath.Join(wd, "other") + " status"},
		{"quoted root", "/tmp/my root", []string{"status"}, "parley --root '/tmp/my root' status"},
		{"quoted args", "mailboxes", []string{"deny", "t1", "--reason", "it's too dear"}, `parley deny t1 --reason 'it'\''s too dear'`},
		{"message id", "mailboxes", []string{"compose", "--reply-to", "<1.a@parley>"}, "parley compose --reply-to '<1.a@parley>'"},
		{"empty arg", "mailboxes", []string{"deny", "t1", "--reason", ""}, "parley deny t1 --reason ''"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Render(tc.root, tc.args...); got != tc.want {
				t.Errorf("Render(%q, %q) = %q, want %q", tc.root, tc.args, got, tc.want)
			}
		})
	}
}

func TestForRoot(t *testing.T) {
	for _, tc := range []struct {
		name, root, text, want string
	}{
		{"default untouched", "mailboxes", "answer with parley approve t1", "answer with parley approve t1"},
		{"command", "/r", "answer with parley approve t1 or parley deny t1", "answer with parley --root /r approve t1 or parley --root /r deny t1"},
		{"start of text", "/r", "parley status says why", "parley --root /r status says why"},
		{"in parentheses", "/r", "(parley status, parley agent vendor-a)", "(parley --root /r status, parley --root /r agent vendor-a)"},
		{"not a command", "/r", "parley reads only regular files; parley is paused", "parley reads only regular files; parley is paused"},
		{"root named already", "/r", "parley --root /x approve t1", "parley --root /x approve t1"},
		{"a file name", "/r", "see parley.toml and ./parley ledger", "see parley.toml and ./parley ledger"},
		{"a longer word", "/r", "parley statuses", "parley statuses"},
		{"dollar in root", "/r$x", "parley status", "parley --root '/r$x' status"},
		{"help", "/r", "parley ledger verify --help says more; parley tail --help", "parley ledger verify --help says more; parley tail --help"},
		{"help after an argument", "/r", "parley deny t1 --help", "parley --root /r deny t1 --help"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ForRoot(tc.root, tc.text); got != tc.want {
				t.Errorf("ForRoot(%q, %q) = %q, want %q", tc.root, tc.text, got, tc.want)
			}
		})
	}
}
