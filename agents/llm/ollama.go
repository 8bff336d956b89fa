// Package llm asks a local model, served by Ollama, for one structured
// answer: a chat call whose reply is constrained by a JSON schema, with its
// cost recorded. It knows nothing of deals; the brains that use it validate
// every answer again and pass every action through the policy.
package llm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/envconfig"
)

// Config is one agent's model: what parley.toml says under brain = "ollama".
type Config struct {
	Model       string        // e.g. "llama3.2"; required
	Host        string        // host:port or URL; empty means OLLAMA_HOST, else 127.0.0.1:11434
	Temperature float64       // sampling temperature; 0 is the most repeatable
	Seed        int           // sampling seed, so a run can be repeated
	Timeout     time.Duration // for one call, first token to last; 0 means 60 s
	MaxTokens   int           // num_predict; 0 means 512
}

// Client asks one model.
type Client struct {
	cfg  Config
	host *url.URL
	api  *api.Client
}

// New returns a client for cfg; it does not contact the server.
func New(cfg Config) (*Client, error) {
	if cfg.Model == "" {
		return nil, errors.New("ollama: no model named (set model = \"...\" beside brain = \"ollama\")")
	}
	host := envconfig.Host()
	if cfg.Host != "" {
		h := cfg.Host
		if !strings.Contains(h, "://") {
			h = "http://" + h
		}
		u, err := url.Parse(h)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("ollama: host %q is not host:port or a URL", cfg.Host)
		}
		host = u
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.MaxTokens == 0 {
		cfg.MaxTokens = 512
	}
	return &Client{cfg: cfg, host: host, api: api.NewClient(host, &http.Client{})}, nil
}

// Host is the server the client asks.
func (c *Client) Host() string { return c.host.String() }

// Call is one question: the system prompt (the agent's role and what binds
// it), the user prompt (the thread so far, as data), and the JSON schema the
// answer must match.
type Call struct {
	System string
	User   string
	Schema json.RawMessage
}

// Record is what the ledger keeps of one call: enough to see what it cost
// and to find the full texts by their hashes.
type Record struct {
	Model        string        `json:"model"`
	PromptSHA256 string        `json:"prompt_sha256"`
	AnswerSHA256 string        `json:"answer_sha256,omitempty"`
	PromptTokens int           `json:"prompt_tokens"`
	AnswerTokens int           `json:"answer_tokens"`
	Duration     time.Duration `json:"duration_ns"`
	DoneReason   string        `json:"done_reason,omitempty"`
}

// Answer is the model's reply: JSON that parsed as an object, which the
// caller still validates field by field.
type Answer struct {
	JSON   json.RawMessage
	Prompt []byte // the request as sent, for ROOT/NAME/state/llm/
	Record Record
}

// The ways a call fails that a brain handles differently: a truncated or
// non-JSON answer is worth asking again; an unreachable server is not, so the
// brain falls back to its rules or escalates.
var (
	ErrTruncated   = errors.New("the answer was cut off before its end (raise max_tokens)")
	ErrNotJSON     = errors.New("the answer is not a JSON object")
	ErrUnreachable = errors.New("the Ollama server does not answer")
)

// Ask makes one chat call. The answer's record is filled in even when the
// answer is refused, so what a failed call cost is still known.
func (c *Client) Ask(ctx context.Context, call Call) (Answer, error) {
	stream := false
	req := &api.ChatRequest{
		Model: c.cfg.Model,
		Messages: []api.Message{
			{Role: "system", Content: call.System},
			{Role: "user", Content: call.User},
		},
		Stream: &stream,
		Format: call.Schema,
		Options: map[string]any{
			"temperature": c.cfg.Temperature,
			"seed":        c.cfg.Seed,
			"num_predict": c.cfg.MaxTokens,
		},
	}
	prompt, err := json.Marshal(req)
	if err != nil {
		return Answer{}, fmt.Errorf("ollama: encode request: %w", err)
	}
	ans := Answer{Prompt: prompt, Record: Record{Model: c.cfg.Model, PromptSHA256: hash(prompt)}}

	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	var resp api.ChatResponse
	err = c.api.Chat(ctx, req, func(r api.ChatResponse) error {
		resp = r
		return nil
	})
	ans.Record.Duration = time.Since(start)
	if err != nil {
		var se api.StatusError
		switch {
		case errors.As(err, &se):
			return ans, fmt.Errorf("ollama %s, model %s: %w", c.host, c.cfg.Model, err)
		case errors.Is(err, context.DeadlineExceeded):
			return ans, fmt.Errorf("ollama %s, model %s: no answer within %s: %w", c.host, c.cfg.Model, c.cfg.Timeout, err)
		case ctx.Err() != nil:
			return ans, fmt.Errorf("ollama %s: %w", c.host, err)
		default:
			return ans, fmt.Errorf("ollama %s: %w (%v)", c.host, ErrUnreachable, err)
		}
	}
	ans.Record.PromptTokens = resp.PromptEvalCount
	ans.Record.AnswerTokens = resp.EvalCount
	ans.Record.DoneReason = resp.DoneReason
	content := []byte(resp.Message.Content)
	ans.Record.AnswerSHA256 = hash(content)
	if resp.DoneReason == "length" {
		return ans, fmt.Errorf("ollama model %s: %w after %d tokens", c.cfg.Model, ErrTruncated, resp.EvalCount)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(content, &obj); err != nil {
		return ans, fmt.Errorf("ollama model %s: %w: %v", c.cfg.Model, ErrNotJSON, err)
	}
	if obj == nil { // the answer was null
		return ans, fmt.Errorf("ollama model %s: %w: null", c.cfg.Model, ErrNotJSON)
	}
	ans.JSON = content
	return ans, nil
}

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
