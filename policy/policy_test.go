package policy

import (
	"bytes"
	"os"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestDefaultIsTOML(t *testing.T) {
	var v map[string]any
	if _, err := toml.Decode(string(Default), &v); err != nil {
		t.Fatalf("the default policy is not valid TOML: %v", err)
	}
	if v["version"] != int64(1) || v["currency"] != "USD" {
		t.Errorf("version %v currency %v, want 1 and USD", v["version"], v["currency"])
	}
}

// The default root in the repository holds the policy that init writes.
func TestRepositoryRootHasDefaultPolicy(t *testing.T) {
	data, err := os.ReadFile("../mailboxes/policy.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, Default) {
		t.Error("mailboxes/policy.toml differs from policy/policy.toml: copy one over the other")
	}
}
