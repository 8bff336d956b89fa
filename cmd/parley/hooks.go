package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/parley-dev/parley/internal/cmdline"
	"github.com/urfave/cli/v2"
)

// hookMark is in every hook parley writes, so that it knows its own.
const hookMark = "# installed by parley hooks install"

func hooksCommand() *cli.Command {
	return &cli.Command{
		Name:  "hooks",
		Usage: "git hooks that guard the ledger",
		Description: `Git hooks for the repository that holds the root: install adds a pre-commit
hook that refuses a commit of a ledger that is not an honest append.

Example:
   git init && parley hooks install`,
		Subcommands: []*cli.Command{{
			Name:      "install",
			Usage:     "add a pre-commit hook that refuses a rewritten or broken ledger",
			ArgsUsage: " ",
			Description: `Writes a pre-commit hook into the git repository that holds the root. Before
each commit it runs parley ledger verify --since-commit --messages: the
chain, the anchors, that the ledger is what the last commit held with lines
added after it, and that every delivered message is in place and signed by
its sender. A commit that would record an edited, dropped or rewritten
ledger, or a forged or unsigned message, is refused. The hook calls parley
from PATH and names the root by its path inside the repository, so the
repository may be moved or cloned. An existing hook that parley did not
write is left alone.

Example:
   parley hooks install
   parley --root shop/mailboxes hooks install`,
			Action: withRoot(0, 0, "no arguments", func(c *cli.Context, e *env) error {
				root, err := filepath.Abs(e.root.Dir)
				if err != nil {
					return err
				}
				out, err := exec.Command("git", "-C", root, "rev-parse", "--git-path", "hooks").Output()
				if err != nil {
					return withHint(fmt.Errorf("%s is not in a git repository", e.root.Dir), "git init first: the ledger is meant to be committed")
				}
				hooks := strings.TrimSpace(string(out))
				if !filepath.IsAbs(hooks) {
					hooks = filepath.Join(root, hooks)
				}
				// The root by its place in the work tree, where git runs the
				// hook: a path of this machine would check another copy of
				// the repository once it is moved or cloned.
				top, err := exec.Command("git", "-C", root, "rev-parse", "--show-toplevel").Output()
				if err != nil {
					return withHint(fmt.Errorf("%s is not in a git work tree", e.root.Dir), "install the hook from a checkout, not a bare repository")
				}
				realRoot, err := filepath.EvalSymlinks(root)
				if err != nil {
					return fmt.Errorf("find the root: %w", err)
				}
				realTop, err := filepath.EvalSymlinks(strings.TrimSpace(string(top)))
				if err != nil {
					return fmt.Errorf("find the work tree: %w", err)
				}
				rel, err := filepath.Rel(realTop, realRoot)
				if err != nil || strings.HasPrefix(rel, "..") {
					return fmt.Errorf("%s is outside its git work tree %s", e.root.Dir, realTop)
				}
				// --root always: PARLEY_ROOT in the committer's environment
				// must not point the hook elsewhere.
				verify := "parley --root " + cmdline.Quote(filepath.ToSlash(rel)) + " ledger verify --since-commit --messages"
				path := filepath.Join(hooks, "pre-commit")
				if old, err := os.ReadFile(path); err == nil && !strings.Contains(string(old), hookMark) {
					return withHint(fmt.Errorf("%s exists and is not parley's", path),
						"add this line to it: cd \"$(git rev-parse --show-toplevel)\" && "+verify)
				}
				script := fmt.Sprintf("#!/bin/sh\n%s: refuse a commit whose ledger is not an honest append.\n"+
					"# git runs it at the top of the work tree; the root is named from there.\n"+
					"cd \"$(git rev-parse --show-toplevel)\" || exit 1\nexec %s\n", hookMark, verify)
				if err := os.MkdirAll(hooks, 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
					return fmt.Errorf("write hook: %w", err)
				}
				_, err = fmt.Fprintf(e.stdout, "installed %s\n", path)
				return err
			}),
		}},
	}
}
