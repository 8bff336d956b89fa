package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/parley-dev/parley/mailbox"
	"github.com/urfave/cli/v2"
)

func ledgerCommand() *cli.Command {
	return &cli.Command{
		Name:  "ledger",
		Usage: "check the ledger",
		Description: `The ledger (ROOT/ledger.jsonl, after the segments sealed in ROOT/ledger/) is
every message and decision, a line each, chained by hash. verify checks it,
anchor records its head where a rewrite would show, export writes it from
wherever it is kept, seal seals its history into files that never change.

Example:
   parley ledger verify
   parley ledger anchor && git commit -m "ledger: anchored" mailboxes/
   parley ledger verify --since-commit --messages
   parley ledger export --out /backup/ledger.jsonl`,
		Subcommands: []*cli.Command{{
			Name:      "verify",
			Usage:     "check that the ledger is as the agents wrote it",
			ArgsUsage: " ",
			Description: `Reads the whole ledger and checks that every line's hash covers its content,
that seq counts up from 1 without a gap and that each line carries the hash
of the one before. It names the first line that was edited, dropped,
inserted or moved, and exits with status 3; on an honest ledger it prints the
chain's head hash: keep it (git commit the ledger) to catch a rewrite of
every hash after an edit, which no chain can tell alone.

It also checks the heads recorded in ROOT/ledger.anchors by parley ledger
anchor: a ledger rewritten after an anchor, every hash recomputed, is caught
there. --since-commit checks that the ledger is what git's HEAD holds with
lines added after it, nothing else — and checks the copy staged in git's
index when the ledger is staged, since that is what a commit records (it
says so: "the staged copy"); --messages that the file of every
delivery it records is still in its inbox, unchanged and signed by its
sender (the pre-commit hook uses both).

A last line cut short by a crash is reported (exit 1); --repair sets it
aside next to the ledger, as every agent's next append would, and verifies.

Example:
   parley ledger verify
   parley ledger verify --json
   git add mailboxes && parley ledger verify --since-commit --messages`,
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "repair", Usage: "set aside a torn last line first"},
				&cli.BoolFlag{Name: "since-commit", Usage: "also check that the ledger only grew since git's HEAD"},
				&cli.BoolFlag{Name: "messages", Usage: "also check that every delivered message is still there, signed by its sender"},
				&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
			},
			Action: withRoot(0, 0, "no arguments", verifyLedger),
		}, {
			Name:      "export",
			Usage:     "write the ledger as the JSONL file, from wherever it is kept",
			ArgsUsage: " ",
			Description: `Writes the whole ledger as the JSONL file a root on files keeps: for a team
on NATS JetStream, the root's ledger.jsonl is brought up to date from the
stream (every command that reads the ledger does this first), and --out
writes a copy elsewhere too. The file is the same, line for line, as the
file transport's: parley ledger verify, tail, thread, why, jq and git work on
it unchanged. Commit it as you would the ledger of a root on files.

Example:
   parley ledger export
   parley ledger export --out /backup/ledger-$(date +%F).jsonl`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "out", Usage: "also write the ledger to this file"},
			},
			Action: withRoot(0, 0, "no arguments", exportLedger),
		}, {
			Name:      "anchor",
			Usage:     "record the ledger's head, so that a later rewrite is caught",
			ArgsUsage: " ",
			Description: `Verifies the ledger and appends its head — "SEQ HASH TIME" — to
ROOT/ledger.anchors, which parley ledger verify checks from then on. Commit
the anchors with the ledger, or copy the line somewhere the agents cannot
write (a commit message, a ticket, an email).

Example:
   parley ledger anchor
   git commit -m "ledger: $(parley ledger anchor)" mailboxes/`,
			Action: withRoot(0, 0, "no arguments", func(c *cli.Context, e *env) error {
				res, err := e.verify(false)
				if err != nil {
					return err
				}
				line, err := mailbox.Anchor(filepath.Join(e.root.Dir, mailbox.AnchorFile), res.VerifyResult, e.now())
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "anchored: %s\n", line)
				return err
			}),
		}, ledgerSealCommand(), ledgerReindexCommand(), ledgerGenerateCommand()},
	}
}

// exportLedger brings the root's ledger.jsonl up to date and copies it to
// --out, whole and synced.
func exportLedger(c *cli.Context, e *env) error {
	path, err := e.root.LedgerPath()
	if err != nil {
		return err
	}
	data, err := readWhole(path)
	if err != nil {
		return fmt.Errorf("export the ledger: %w", err)
	}
	lines := bytes.Count(data, []byte("\n"))
	if out := c.String("out"); out != "" {
		if err := mailbox.WriteDurable(out, data); err != nil {
			return fmt.Errorf("export the ledger: %w", err)
		}
		path = out
	}
	_, err = fmt.Fprintf(e.stdout, "exported %d lines to %s\n", lines, path)
	return err
}

func verifyLedger(c *cli.Context, e *env) error {
	if c.Bool("repair") {
		if _, err := e.root.Ledger(); err != nil { // opening sets a torn tail aside
			return err
		}
	}
	res, verr := e.verify(c.Bool("since-commit"))
	checked := filepath.Join(e.root.Dir, mailbox.LedgerFile)
	if res.Staged {
		checked += " (the staged copy, as git would commit it; the file differs: git add it to check that)"
	}
	if res.Segments > 0 {
		checked += fmt.Sprintf(" after %d sealed segment(s) in %s", res.Segments, filepath.Join(e.root.Dir, mailbox.SegmentDir))
	}
	signed := 0
	if verr == nil && c.Bool("messages") {
		signed, verr = e.verifyMessages()
		if verr != nil && !errors.As(verr, new(*mailbox.VerifyError)) {
			return verr
		}
	}
	if c.Bool("json") {
		out := map[string]any{"ok": verr == nil, "entries": res.Lines, "bytes": res.Bytes, "head": res.Head, "messages": signed, "staged": res.Staged, "segments": res.Segments}
		var ve *mailbox.VerifyError
		if errors.As(verr, &ve) {
			out["line"], out["kind"], out["error"] = ve.Line, ve.Kind, ve.Error()
		}
		if err := printJSON(e.stdout, out); err != nil {
			return err
		}
	}
	if verr != nil {
		return verr
	}
	if e.root.Transport == nil && !res.Staged && !c.Bool("since-commit") && res.Lines > 0 {
		// The whole file verified just now: every process may start
		// verifying after it (a cache; mailbox.OpenLedgerFrom checks it).
		_ = mailbox.KeepPosition(e.root.Dir, mailbox.Position{Seq: uint64(res.Lines), Hash: res.Head, Offset: res.Bytes})
	}
	if !c.Bool("json") {
		fmt.Fprintf(e.stdout, "%s: ok, %d entries, head %s\n", checked, res.Lines, res.Head)
		if c.Bool("since-commit") {
			fmt.Fprintln(e.stdout, "only lines added since git's HEAD")
		}
		if c.Bool("messages") {
			fmt.Fprintf(e.stdout, "%d delivered messages in place, each signed by its sender\n", signed)
		}
	}
	return nil
}

// verified is what verify checked.
type verified struct {
	mailbox.VerifyResult
	Staged   bool // the copy in git's index, which differs from the file
	Segments int  // the sealed segments read before the live file
}

// verifyMessages checks the message file of every delivery the ledger
// records (Root.VerifyDelivered). On files it reads the ledger as a
// stream, the deliveries a batch at a time: memory does not grow with it.
func (e *env) verifyMessages() (int, error) {
	if e.root.Transport != nil { // every message kept on the transport, read once
		entries, err := readLedger(e.root)
		if err != nil {
			return 0, err
		}
		return e.root.VerifyDelivered(entries)
	}
	f, err := mailbox.OpenLedgerReader(filepath.Join(e.root.Dir, mailbox.LedgerFile))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	signed := 0
	var batch []mailbox.Entry
	check := func() error {
		n, err := e.root.VerifyDelivered(batch)
		signed, batch = signed+n, batch[:0]
		return err
	}
	delivered := []byte(`"event":"` + mailbox.EventDelivered + `"`)
	err = mailbox.ReadSomeEntries(f, func(line []byte) bool { return bytes.Contains(line, delivered) }, func(_ int, x mailbox.Entry) error {
		if batch = append(batch, x); len(batch) == 10_000 {
			return check()
		}
		return nil
	})
	if err != nil && !errors.Is(err, mailbox.ErrTornTail) {
		return signed, err
	}
	return signed, check()
}

// verify checks the ledger's chain, its anchors and, when asked, that it
// only grew since git's HEAD — the staged copy, when there is one, since
// that is what a commit records.
func (e *env) verify(sinceCommit bool) (verified, error) {
	path, err := e.root.LedgerPath()
	if err != nil {
		return verified{}, err
	}
	anchors, err := mailbox.ReadAnchors(filepath.Join(e.root.Dir, mailbox.AnchorFile))
	if err != nil {
		return verified{}, err
	}
	if !sinceCommit {
		// Read as a stream, across the sealed segments: memory does not
		// grow with the ledger.
		f, err := mailbox.OpenLedgerReader(path)
		if errors.Is(err, fs.ErrNotExist) {
			return verified{}, withHint(fmt.Errorf("%s has no ledger", e.root.Dir), "parley init creates it")
		}
		if err != nil {
			return verified{}, fmt.Errorf("%s: %w", path, err)
		}
		defer f.Close()
		res, err := mailbox.VerifyAnchored(f, anchors)
		var ve *mailbox.VerifyError
		if errors.As(err, &ve) && ve.Line > 0 && f.Segments() > 0 {
			ve.At = f.Locate(ve.Line) // the file a person restores
			return verified{VerifyResult: res}, err
		}
		if err != nil {
			return verified{VerifyResult: res}, fmt.Errorf("%s: %w", path, err)
		}
		return verified{VerifyResult: res, Segments: f.Segments()}, nil
	}
	res, err := verifySinceCommit(path, anchors)
	if err != nil {
		return res, err
	}
	// The anchors only grow too: an anchor changed to cover a rewrite is one.
	if anchorsPath := filepath.Join(e.root.Dir, mailbox.AnchorFile); fileExists(anchorsPath) {
		g, err := gitFile(anchorsPath)
		if err != nil {
			return res, err
		}
		now, _ := os.ReadFile(anchorsPath)
		if staged, ok := g.show(":"); ok {
			now = staged
		}
		if before, _ := g.show("HEAD:"); !bytes.HasPrefix(now, before) {
			return res, &mailbox.VerifyError{Kind: "rewritten", Msg: anchorsPath + " is not what git's HEAD holds with lines added after it",
				Hint: "anchors are only ever added"}
		}
	}
	return res, nil
}

// gitPath is a file of a git work tree: the tree's top and the file's path
// in it, symbolic links resolved.
type gitPath struct{ top, rel string }

func gitFile(path string) (gitPath, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return gitPath{}, err
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return gitPath{}, err
	}
	out, err := exec.Command("git", "-C", filepath.Dir(real), "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return gitPath{}, withHint(fmt.Errorf("%s is not in a git repository", path), "git init, or leave out --since-commit")
	}
	top, err := filepath.EvalSymlinks(strings.TrimSpace(string(out)))
	if err != nil {
		return gitPath{}, err
	}
	rel, err := filepath.Rel(top, real)
	if err != nil || strings.HasPrefix(rel, "..") {
		return gitPath{}, fmt.Errorf("%s is outside its git work tree %s", path, top)
	}
	return gitPath{top: top, rel: filepath.ToSlash(rel)}, nil
}

// verifySinceCommit verifies the ledger as a commit would record it — the
// staged copy, or the file when nothing is staged — and that it is what
// git's HEAD holds with lines added after it, reading each part once, as a
// stream: every sealed segment HEAD holds staged as it was (the same blob),
// and HEAD's live file the start of what follows them.
func verifySinceCommit(file string, anchors map[uint64]string) (verified, error) {
	var res verified
	rewritten := &mailbox.VerifyError{Kind: "rewritten", Msg: file + " is not what git's HEAD holds with lines added after it",
		Hint: "git diff shows what changed; only appends may be committed"}
	g, err := gitFile(file)
	if err != nil {
		return res, err
	}
	head, staged := g.ledgerBlobs("HEAD"), g.ledgerBlobs(":")
	var src io.Reader
	if len(staged) == 0 {
		if len(head) > 0 {
			return res, rewritten // the commit would remove it
		}
		f, err := mailbox.OpenLedgerReader(file)
		if errors.Is(err, fs.ErrNotExist) {
			return res, withHint(fmt.Errorf("%s has no ledger", filepath.Dir(file)), "parley init creates it")
		}
		if err != nil {
			return res, fmt.Errorf("read ledger: %w", err)
		}
		defer f.Close()
		src = f
	} else {
		res.Staged = exec.Command("git", "-C", g.top, "diff", "--quiet", "--", g.rel, path.Join(path.Dir(g.rel), mailbox.SegmentDir)).Run() != nil
		src = g.blobs(staged)
	}
	// HEAD's segments, staged as they were, come first; its live file is
	// what the stream goes on with.
	var before int64
	segs := 0
	for _, b := range head {
		if !b.segment {
			break
		}
		if segs >= len(staged) || staged[segs].name != b.name || staged[segs].id != b.id {
			return res, rewritten
		}
		before += b.size
		segs++
	}
	var live io.Reader = strings.NewReader("")
	if n := len(head); n > 0 && !head[n-1].segment {
		live = g.blobs(head[n-1:])
	}
	same := &startsWith{r: src, skip: before, want: bufio.NewReader(live)}
	res.VerifyResult, err = mailbox.VerifyAnchored(same, anchors)
	if err != nil {
		return res, fmt.Errorf("%s: %w", file, err)
	}
	if same.differs || !same.done() {
		return res, rewritten
	}
	return res, nil
}

// startsWith reads r, comparing what comes after its first skip bytes with
// want, as long as want lasts.
type startsWith struct {
	r       io.Reader
	skip    int64
	want    *bufio.Reader
	differs bool
}

func (s *startsWith) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	got := p[:n]
	if s.skip > 0 {
		k := min(int64(len(got)), s.skip)
		got, s.skip = got[k:], s.skip-k
	}
	for len(got) > 0 && !s.differs {
		w, werr := s.want.Peek(min(len(got), s.want.Size()))
		if len(w) == 0 && werr != nil {
			break // want is all read: what follows is appended
		}
		if !bytes.Equal(got[:len(w)], w) {
			s.differs = true
		}
		s.want.Discard(len(w))
		got = got[len(w):]
	}
	return n, err
}

// done reports whether all of want was read.
func (s *startsWith) done() bool {
	_, err := s.want.Peek(1)
	return err != nil
}

// readWhole reads the whole ledger whose live file is at path: the sealed
// segments, then the live file.
func readWhole(path string) ([]byte, error) {
	f, err := mailbox.OpenLedgerReader(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// blob is a file of the ledger as git holds it.
type blob struct {
	name    string
	id      string
	size    int64
	segment bool
}

// ledgerBlobs are the ledger's files as git holds them at rev ("HEAD" or
// ":" for the index): its sealed segments in order, then the live file.
func (g gitPath) ledgerBlobs(rev string) []blob {
	dir := path.Join(path.Dir(g.rel), mailbox.SegmentDir)
	var list []byte
	if rev == ":" {
		list, _ = exec.Command("git", "-C", g.top, "ls-files", "-s", "--", dir, g.rel).Output() // MODE ID STAGE\tPATH
	} else {
		list, _ = exec.Command("git", "-C", g.top, "ls-tree", "-r", "-l", rev, "--", dir, g.rel).Output() // MODE TYPE ID SIZE\tPATH
	}
	var segs []blob
	var live *blob
	for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		meta, name, ok := strings.Cut(line, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) < 3 {
			continue
		}
		b := blob{name: name, id: f[1]}
		if rev != ":" && len(f) >= 4 {
			b.id = f[2]
			b.size, _ = strconv.ParseInt(f[3], 10, 64)
		}
		switch {
		case name == g.rel:
			live = &b
		case mailbox.IsSegmentName(path.Base(name)) && path.Dir(name) == dir:
			b.segment = true
			segs = append(segs, b)
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].name < segs[j].name }) // numbered with leading zeros: in order
	if rev == ":" {
		for i := range segs { // sizes are not listed: a segment compared by id needs none
			segs[i].size = 0
		}
	}
	if live != nil {
		segs = append(segs, *live)
	}
	return segs
}

// blobs reads the blobs one after another, each from git as it comes.
func (g gitPath) blobs(bs []blob) io.Reader {
	readers := make([]io.Reader, len(bs))
	for i, b := range bs {
		readers[i] = &gitBlob{top: g.top, id: b.id}
	}
	return io.MultiReader(readers...)
}

// gitBlob is git cat-file's output for one blob, started at the first read.
type gitBlob struct {
	top, id string
	cmd     *exec.Cmd
	out     io.ReadCloser
}

func (b *gitBlob) Read(p []byte) (int, error) {
	if b.cmd == nil {
		b.cmd = exec.Command("git", "-C", b.top, "cat-file", "blob", b.id)
		out, err := b.cmd.StdoutPipe()
		if err != nil {
			return 0, err
		}
		if err := b.cmd.Start(); err != nil {
			return 0, fmt.Errorf("git cat-file: %w", err)
		}
		b.out = out
	}
	n, err := b.out.Read(p)
	if err == io.EOF {
		if werr := b.cmd.Wait(); werr != nil {
			return n, fmt.Errorf("git cat-file blob %s: %w", b.id, werr)
		}
	}
	return n, err
}

// show returns the file as git holds it at rev ("HEAD:" or ":" for the
// index), and whether git holds it there at all.
func (g gitPath) show(rev string) ([]byte, bool) {
	if exec.Command("git", "-C", g.top, "cat-file", "-e", rev+g.rel).Run() != nil {
		return nil, false // no HEAD yet, or a ledger not committed or staged
	}
	out, err := exec.Command("git", "-C", g.top, "show", rev+g.rel).Output()
	return out, err == nil
}
