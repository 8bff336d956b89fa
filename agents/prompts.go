package agents

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The role prompts parley ships, one file a role, written into a root's
// prompts/ folder by parley init for a person to read and edit.
//
//go:embed prompts/*.md
var shipped embed.FS

// PromptsDir is the folder of a root that holds the role prompts.
const PromptsDir = "prompts"

// ShippedPrompts returns the shipped role prompts by file name
// (procurement.md, ...).
func ShippedPrompts() map[string][]byte {
	out := map[string][]byte{}
	entries, _ := shipped.ReadDir("prompts")
	for _, e := range entries {
		data, _ := shipped.ReadFile("prompts/" + e.Name())
		out[e.Name()] = data
	}
	return out
}

// PromptFile is the file that holds an agent's role prompt: prompt in
// parley.toml (relative to the root), else prompts/ROLE.md.
func (a *Agent) PromptFile(root string) string {
	if a.Prompt == "" {
		return filepath.Join(root, PromptsDir, a.Role+".md")
	}
	if filepath.IsAbs(a.Prompt) {
		return a.Prompt
	}
	return filepath.Join(root, a.Prompt)
}

// RolePrompt reads an agent's role prompt from its file; a root without
// prompts/ROLE.md gets the shipped one. A prompt file named in parley.toml
// must exist.
func RolePrompt(root string, a *Agent) (string, error) {
	path := a.PromptFile(root)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && a.Prompt == "" {
		data, err = shipped.ReadFile("prompts/" + a.Role + ".md")
		if err != nil {
			// A role of the team's own: the prompt of any agent, which the
			// role's facts (what it sends, to whom) complete.
			data, err = shipped.ReadFile("prompts/agent.md")
		}
		if err != nil {
			return "", fmt.Errorf("agent %s: the %s role has no shipped prompt; write %s", a.Name, a.Role, path)
		}
		return string(data), nil
	}
	if err != nil {
		return "", fmt.Errorf("agent %s: read its prompt: %w (write the file, or remove prompt = %q from %s)", a.Name, err, a.Prompt, TeamFile)
	}
	if strings.TrimSpace(string(data)) == "" {
		return "", fmt.Errorf("agent %s: the prompt %s is empty", a.Name, path)
	}
	return string(data), nil
}
