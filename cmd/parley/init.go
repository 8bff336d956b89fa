package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/internal/cmdline"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/mailbox/jsteam"
	"github.com/parley-dev/parley/policy"
	"github.com/urfave/cli/v2"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "create a mailbox root with the default team, or complete an existing one",
		ArgsUsage: " ",
		Description: `Creates the root (--root, default ./mailboxes): parley.toml with the default
procurement team (inventory, procurement, vendor-a, vendor-b, vendor-c,
finance and human), a commented policy.toml, an inbox for every agent of
parley.toml and the ledger. Whatever exists is kept: init never overwrites a
file, so it is safe to run again, for instance after adding an agent to
parley.toml.

--template starts from another team: minimal (a helper and its human: the
place to start), content (writer, editor, publisher), sales (qualifier,
proposal writer, scheduler) or ops (monitor, responder, reporter). Their
brains are small programs in brains/ (python3); docs/TEMPLATES.md.

Example:
   parley init
   parley --root /srv/parley init
   parley --root content init --template content`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "template", Value: "procurement", Usage: "the team to start with: " + strings.Join(agents.Templates(), ", ")},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 0, "no arguments"); err != nil {
				return err
			}
			return initRoot(c)
		},
	}
}

func initRoot(c *cli.Context) error {
	dir := c.String("root")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create root: %w", err)
	}
	tpl, err := agents.LoadTemplate(c.String("template"))
	if err != nil {
		if guess := suggest(c.String("template"), agents.Templates()); guess != "" {
			return withHint(usageError{err}, "did you mean --template "+guess+"?")
		}
		return usageError{err}
	}
	if c.IsSet("template") {
		if err := sameTeam(dir, tpl); err != nil {
			return err
		}
	}
	teamText := tpl.Team
	if t := c.String("transport"); t != "" && t != "files" {
		if jsteam.HasSecret(t) {
			return withHint(errors.New("--transport carries a password or token, and parley.toml is committed to git"),
				"init with the URL without it, and give the whole URL on each machine in PARLEY_TRANSPORT")
		}
		// parley --transport nats://... init: a new team file says so.
		teamText = bytes.Replace(teamText, []byte("version = 1\n"), []byte(fmt.Sprintf("version = 1\ntransport = %q\n", t)), 1)
	}
	var created, kept []string
	files := []struct {
		name string
		data []byte
	}{{agents.TeamFile, teamText}, {policy.File, tpl.Policy}}
	for name, data := range tpl.Brains {
		files = append(files, struct {
			name string
			data []byte
		}{filepath.Join("brains", name), data})
	}
	if len(tpl.Brains) > 0 {
		if err := os.MkdirAll(filepath.Join(dir, "brains"), 0o755); err != nil {
			return fmt.Errorf("create root: %w", err)
		}
	}
	for _, f := range files {
		made, err := createFile(filepath.Join(dir, f.name), f.data)
		if err != nil {
			return err
		}
		if made {
			created = append(created, f.name)
		} else {
			kept = append(kept, f.name)
		}
	}
	// The role prompts the Ollama brains read, for a person to edit.
	if err := os.MkdirAll(filepath.Join(dir, agents.PromptsDir), 0o755); err != nil {
		return fmt.Errorf("create root: %w", err)
	}
	prompts, written := agents.ShippedPrompts(), 0
	for name, text := range prompts {
		made, err := createFile(filepath.Join(dir, agents.PromptsDir, name), text)
		if err != nil {
			return err
		}
		if made {
			written++
		}
	}
	if written > 0 {
		created = append(created, fmt.Sprintf("%s/(%d)", agents.PromptsDir, written))
	}
	e, err := open(c)
	if err != nil {
		return err
	}
	defer e.close()
	team, err := e.team()
	if err != nil {
		return err
	}
	keys := 0
	for _, a := range team.Agents {
		inbox := e.root.Inbox(a.Name)
		if inbox.Exists() {
			kept = append(kept, a.Name+"/")
		} else {
			created = append(created, a.Name+"/")
		}
		if err := inbox.Create(); err != nil {
			return err
		}
		if a.Role == "inventory" {
			if _, err := createFile(inbox.Path(agents.StockFile), []byte(agents.DefaultStock)); err != nil {
				return err
			}
		}
		made, err := e.root.NewKey(a.Name)
		if err != nil {
			return err
		}
		if made {
			keys++
		}
	}
	if made, err := e.root.NewKey(mailbox.System); err != nil { // parley's own, for bounces and rejections
		return err
	} else if made {
		keys++
	}
	if keys > 0 {
		created = append(created, fmt.Sprintf("keys/(%d)", keys))
	}
	// Private keys stay out of git; public keys and the ledger go in.
	if made, err := createFile(filepath.Join(dir, ".gitignore"), []byte(rootGitignore)); err != nil {
		return err
	} else if made {
		created = append(created, ".gitignore")
	}
	ledgerExisted := fileExists(filepath.Join(dir, mailbox.LedgerFile))
	if _, err := e.root.Ledger(); err != nil {
		return err
	}
	_, copied := e.root.Transport.(mailbox.Copied)
	switch {
	case copied:
		// The ledger is the server's stream; ledger.jsonl is only its copy,
		// written when a command reads the ledger: not created here.
	case ledgerExisted:
		kept = append(kept, mailbox.LedgerFile)
	default:
		created = append(created, mailbox.LedgerFile)
		// A new root seals its ledger's history as it grows (parley
		// ledger seal); an older one keeps its one file until asked.
		if made, err := mailbox.MakeSegmentDir(filepath.Join(dir, mailbox.LedgerFile)); err != nil {
			return err
		} else if made {
			created = append(created, mailbox.SegmentDir+"/")
		}
	}
	if len(created) == 0 {
		fmt.Fprintf(e.stdout, "%s is ready: nothing to create (%d agents)\n", dir, len(team.Agents))
		return nil
	}
	fmt.Fprintf(e.stdout, "%s is ready with %d agents: %s\n", dir, len(team.Agents), strings.Join(team.Names(), ", "))
	fmt.Fprintf(e.stdout, "created: %s\n", strings.Join(created, " "))
	if len(kept) > 0 {
		fmt.Fprintf(e.stdout, "kept:    %s\n", strings.Join(kept, " "))
	}
	return nil
}

// rootGitignore keeps out of a root's git what must not be committed (the
// private keys) and what every run changes but is no record (each agent's
// state/: its lock, heartbeat, state.json and kept ledger head; up.lock;
// deliveries under way in tmp/; the checkpoints of what readers derive
// from the ledger, rebuilt from it at will), so that git status after a
// run shows only the record: new messages and ledger lines.
const rootGitignore = `# Written by parley init. Commit the team, the policy, keys/, the ledger
# and the messages; private keys never go into git, and what each run
# changes but is no record stays out, so git status shows only the record.
*/state/*.key
*/state/*.key.new
.parley/*.key
.parley/*.key.new
*/state/
up.lock
*/tmp/
*/.Archive/tmp/
.parley/checkpoint/
`

// sameTeam refuses a template that the root's existing team is not: init
// never overwrites parley.toml, and applying none of a template asked for
// in silence would surprise. A team with every agent of the template (the
// same root initialised again, grown since) is the template's.
func sameTeam(dir string, tpl *agents.Template) error {
	path := filepath.Join(dir, agents.TeamFile)
	if !fileExists(path) {
		return nil
	}
	have, err := agents.LoadTeam(path)
	if err != nil {
		return err
	}
	want, err := agents.ParseTeam(tpl.Name, tpl.Team)
	if err != nil {
		return err
	}
	var missing []string
	for _, a := range want.Agents {
		if have.Agent(a.Name) == nil {
			missing = append(missing, a.Name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return withHint(usageError{fmt.Errorf("%s holds another team than template %s (no %s): init keeps parley.toml and applies no template",
		dir, tpl.Name, strings.Join(missing, ", "))},
		fmt.Sprintf("start the template in a root of its own: %s; or leave --template out to complete this root",
			cmdline.Render(filepath.Join(filepath.Dir(filepath.Clean(dir)), tpl.Name), "init", "--template", tpl.Name)))
}

// createFile writes data to a new file at path and reports true, or
// reports false when the file exists (it is never overwritten).
func createFile(path string, data []byte) (bool, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, f.Close()
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
