// Command tinymodel writes a tiny llama-architecture GGUF model — seeded
// random weights, two layers of 32 dimensions, a byte-level tokenizer of 258
// tokens, about 150 KB — that loads in a real Ollama server and answers
// /api/chat with grammar-constrained JSON in milliseconds. Its answers are
// nonsense, which is the point: the end-to-end tests against a real server
// (make ollama-model) must handle every one of them safely.
//
//	go run ./internal/tinymodel -o tiny.gguf -seed 1
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/ollama/ollama/fs/ggml"
)

// The model's shape: small enough to build in a blink, large enough to load.
const (
	nEmbd  = 32
	nFF    = 64
	nHead  = 4
	nLayer = 2
)

func main() {
	out := flag.String("o", "tiny.gguf", "the GGUF file to write")
	seed := flag.Uint64("seed", 1, "the seed of the random weights")
	flag.Parse()
	if err := write(*out, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "tinymodel:", err)
		os.Exit(1)
	}
}

// write writes the model to path, its weights drawn from seed.
func write(path string, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0))
	tokens := byteTokens()
	types := make([]int32, len(tokens))
	for i := range types {
		types[i] = 1 // normal
	}
	tokens = append(tokens, "<s>", "</s>")
	types = append(types, 3, 3) // control
	nVocab := uint64(len(tokens))

	kv := ggml.KV{
		"general.architecture":                   "llama",
		"general.name":                           "parley-tiny",
		"general.file_type":                      uint32(0), // all F32
		"llama.block_count":                      uint32(nLayer),
		"llama.context_length":                   uint32(16384),
		"llama.embedding_length":                 uint32(nEmbd),
		"llama.feed_forward_length":              uint32(nFF),
		"llama.attention.head_count":             uint32(nHead),
		"llama.attention.head_count_kv":          uint32(nHead),
		"llama.attention.layer_norm_rms_epsilon": float32(1e-5),
		"llama.rope.dimension_count":             uint32(nEmbd / nHead),
		"llama.rope.freq_base":                   float32(10000),
		"llama.vocab_size":                       uint32(nVocab),
		"tokenizer.ggml.model":                   "gpt2",
		"tokenizer.ggml.pre":                     "default",
		"tokenizer.ggml.tokens":                  tokens,
		"tokenizer.ggml.token_type":              types,
		"tokenizer.ggml.merges":                  []string{},
		"tokenizer.ggml.bos_token_id":            uint32(nVocab - 2),
		"tokenizer.ggml.eos_token_id":            uint32(nVocab - 1),
		"tokenizer.ggml.add_bos_token":           true,
		"tokenizer.ggml.add_eos_token":           false,
	}
	tensor := func(name string, shape ...uint64) (*ggml.Tensor, error) {
		n := uint64(1)
		for _, s := range shape {
			n *= s
		}
		vals := make([]float32, n)
		for i := range vals {
			if len(shape) == 1 {
				vals[i] = 1 // norms start at one, as trained ones roughly do
			} else {
				vals[i] = float32(rng.NormFloat64() * 0.2)
			}
		}
		var b bytes.Buffer
		if err := binary.Write(&b, binary.LittleEndian, vals); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", name, err)
		}
		return &ggml.Tensor{Name: name, Kind: 0, Shape: shape, WriterTo: bytes.NewReader(b.Bytes())}, nil
	}
	type spec struct {
		name  string
		shape []uint64
	}
	specs := []spec{
		{"token_embd.weight", []uint64{nEmbd, nVocab}},
		{"output_norm.weight", []uint64{nEmbd}},
		{"output.weight", []uint64{nEmbd, nVocab}},
	}
	for i := range nLayer {
		p := fmt.Sprintf("blk.%d.", i)
		specs = append(specs,
			spec{p + "attn_norm.weight", []uint64{nEmbd}},
			spec{p + "attn_q.weight", []uint64{nEmbd, nEmbd}},
			spec{p + "attn_k.weight", []uint64{nEmbd, nEmbd}},
			spec{p + "attn_v.weight", []uint64{nEmbd, nEmbd}},
			spec{p + "attn_output.weight", []uint64{nEmbd, nEmbd}},
			spec{p + "ffn_norm.weight", []uint64{nEmbd}},
			spec{p + "ffn_gate.weight", []uint64{nEmbd, nFF}},
			spec{p + "ffn_up.weight", []uint64{nEmbd, nFF}},
			spec{p + "ffn_down.weight", []uint64{nFF, nEmbd}},
		)
	}
	ts := make([]*ggml.Tensor, 0, len(specs))
	for _, s := range specs {
		t, err := tensor(s.name, s.shape...)
		if err != nil {
			return err
		}
		ts = append(ts, t)
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := ggml.WriteGGUF(f, kv, ts); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// byteTokens is GPT-2's byte-level alphabet: one printable rune for each of
// the 256 bytes, so any text tokenizes without merges.
func byteTokens() []string {
	var printable []int
	for _, r := range [][2]int{{'!', '~'}, {'¡', '¬'}, {'®', 'ÿ'}} {
		for b := r[0]; b <= r[1]; b++ {
			printable = append(printable, b)
		}
	}
	tokens := make([]string, 256)
	for _, b := range printable {
		tokens[b] = string(rune(b))
	}
	next := 256
	for b := range 256 {
		if tokens[b] == "" {
			tokens[b] = string(rune(next))
			next++
		}
	}
	return tokens
}
