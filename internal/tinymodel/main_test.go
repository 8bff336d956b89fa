package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ollama/ollama/fs/ggml"
)

func TestWriteLoadsAsLlama(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := write(path, 1); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := ggml.Decode(f, -1)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	kv := m.KV()
	if got := kv.Architecture(); got != "llama" {
		t.Errorf("architecture = %q, want llama", got)
	}
	if got := kv.BlockCount(); got != nLayer {
		t.Errorf("block count = %d, want %d", got, nLayer)
	}
	tokens := kv.Strings("tokenizer.ggml.tokens")
	if len(tokens) != 258 {
		t.Fatalf("vocabulary = %d tokens, want 258", len(tokens))
	}
	// GPT-2's byte alphabet: printable ASCII is itself, space is Ġ, newline Ċ.
	for b, want := range map[int]string{'A': "A", ' ': "Ġ", '\n': "Ċ"} {
		if tokens[b] != want {
			t.Errorf("token %d = %q, want %q", b, tokens[b], want)
		}
	}
	seen := map[string]bool{}
	for _, tok := range tokens {
		if seen[tok] {
			t.Errorf("token %q twice", tok)
		}
		seen[tok] = true
	}
	if got, want := len(m.Tensors().Items()), 3+9*nLayer; got != want {
		t.Errorf("tensors = %d, want %d", got, want)
	}
}

func TestWriteIsSeeded(t *testing.T) {
	dir := t.TempDir()
	read := func(name string, seed uint64) []byte {
		p := filepath.Join(dir, name)
		if err := write(p, seed); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := read("a", 1), read("b", 1), read("c", 2)
	if !bytes.Equal(a, b) {
		t.Error("the same seed wrote two different models")
	}
	if bytes.Equal(a, c) {
		t.Error("two seeds wrote the same model")
	}
}
