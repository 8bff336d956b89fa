package mailbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/strangers"
)

// stranger makes a file of one hostile kind at path; it returns what the
// .err must say it is.
type stranger struct {
	name string
	make func(t *testing.T, path string)
	what string
}

func strangerFiles(t *testing.T, outside string) []stranger {
	var out []stranger
	for _, s := range strangers.All(outside) {
		out = append(out, stranger{s.Name, s.Make, s.What})
	}
	return append(out, []stranger{
		{"oversized", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(strings.Repeat("x", DefaultMaxMessageSize+1)), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "a file of 1048577 bytes"},
	}...)
}

// TestReadMessageFile: only a regular file within the limit is read, and
// the error says what anything else is, without blocking or reading it.
func TestReadMessageFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadMessageFile(good, 0); err != nil || string(data) != "hello\n" {
		t.Fatalf("ReadMessageFile(regular) = %q, %v", data, err)
	}
	if _, err := ReadMessageFile(good, 5); !errors.Is(err, ErrStranger) {
		t.Fatalf("ReadMessageFile(6 bytes, limit 5) = %v, want a stranger", err)
	}
	for _, s := range strangerFiles(t, good) {
		t.Run(s.name, func(t *testing.T) {
			path := filepath.Join(dir, s.name)
			s.make(t, path)
			_, err := ReadMessageFile(path, 0)
			var se *StrangerError
			if !errors.As(err, &se) {
				t.Fatalf("ReadMessageFile = %v, want a *StrangerError", err)
			}
			if got := se.What; got != s.what {
				t.Errorf("What = %q, want %q", got, s.what)
			}
		})
	}
}

// TestClaimsSetStrangersAside puts each kind of stranger into new/ and
// into cur/ (claimed with parley's mark before a stop, unfinished), between
// good messages:
// each is moved to rejected/ with a .err that says what it is, one ledger
// line records it, and every good message is claimed.
func TestClaimsSetStrangersAside(t *testing.T) {
	for _, where := range []string{"new", "cur"} {
		t.Run(where, func(t *testing.T) {
			r := newRoot(t, "procurement", "vendor-b")
			outside := filepath.Join(t.TempDir(), "signed.msg")
			if err := os.WriteFile(outside, testMessage("vendor-b", "procurement", Notify).Marshal(), 0o644); err != nil {
				t.Fatal(err)
			}
			d := r.Inbox("procurement")
			ss := strangerFiles(t, outside)
			var made []stranger
			for i, s := range ss {
				name := NewFileName(t0.Add(time.Duration(i) * time.Second))
				if where == "cur" {
					name += markField + markClaimed + info
				}
				t.Run("make-"+s.name, func(t *testing.T) { s.make(t, d.Path(where, name)) })
				if _, err := os.Lstat(d.Path(where, name)); err == nil {
					made = append(made, s)
				}
				if _, err := r.Deliver("vendor-b", testMessage("vendor-b", "procurement", Notify)); err != nil {
					t.Fatal(err)
				}
			}
			cl, err := r.Claims("procurement")
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if where == "cur" {
				_, rejected, err := cl.Unfinished()
				if err != nil {
					t.Fatal(err)
				}
				if got, want := len(rejected), len(made); got != want {
					t.Errorf("Unfinished rejected %d, want %d: %v", got, want, rejected)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			good, refused := 0, 0
			if where == "cur" {
				refused = len(made)
			}
			for good < len(ss) || refused < len(made) {
				c, err := cl.Next(ctx)
				if errors.Is(err, ErrRejected) {
					refused++
					continue
				}
				if err != nil {
					t.Fatalf("after %d good: %v", good, err)
				}
				good++
				if err := r.Finish(c, FlagDone, ""); err != nil {
					t.Fatal(err)
				}
			}
			errs, _ := filepath.Glob(d.Path("rejected", "*.err"))
			if got, want := len(errs), len(made); got != want {
				t.Fatalf("rejected/ holds %d .err, want %d", got, want)
			}
			said := ""
			for _, e := range errs {
				b, _ := os.ReadFile(e)
				said += string(b)
				if _, err := os.Lstat(strings.TrimSuffix(e, ".err")); err != nil {
					t.Errorf("%s has no file beside it: %v", e, err)
				}
			}
			for _, s := range made {
				if !strings.Contains(said, s.what+": ") {
					t.Errorf("no .err says %q:\n%s", s.what, said)
				}
			}
			rejectedLines := 0
			for _, e := range ledgerEntries(t, r) {
				if e.Event == EventRejected {
					rejectedLines++
				}
			}
			if got, want := rejectedLines, len(made); got != want {
				t.Errorf("%d rejected lines in the ledger, want %d", got, want)
			}
			if got := files(t, d.Path("new")); len(got) != 0 {
				t.Errorf("new/ still holds %v", got)
			}
			if data, err := os.ReadFile(outside); err != nil || !strings.Contains(string(data), "NOTIFY") {
				t.Errorf("the file a link pointed to was touched: %v", err)
			}
			verifyRoot(t, r)
		})
	}
}
