// Package policy holds parley's guardrails: the policy.toml that every
// agent checks before it acts.
//
// What exists so far is the policy that parley init writes into a new root,
// a commented example of the schema; loading and evaluating it is the work
// of the policy issue, and until then parley enforces none of it.
package policy

import _ "embed"

// File is the policy's file name in a root.
const File = "policy.toml"

// Default is the commented policy that parley init writes.
//
//go:embed policy.toml
var Default []byte
