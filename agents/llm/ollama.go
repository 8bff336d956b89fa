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
	Context     int           // num_ctx, the context window in tokens; 0 leaves the server's default
	// Concurrency is how many calls the server takes at once, from every
	// process on the machine (its queue, QueueDir); 0 means 1. Timeout
	// counts the wait for a turn.
	Concurrency int
}

// Client asks one model.
type Client struct {
	cfg   Config
	host  *url.URL
	api   *api.Client
	queue Queue
}

// New returns a client for cfg; it does not contact the server.
func New(cfg Config) (*Client, error) {
	if cfg.Model == "" {
		return nil, errors.New("ollama: no model named (set model = \"...\" beside brain = \"ollama\")")
	}
	host, err := ParseHost(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("ollama: %w", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.MaxTokens == 0 {
		cfg.MaxTokens = 512
	}
	return &Client{cfg: cfg, host: host, api: api.NewClient(host, &http.Client{}), queue: Queue{Dir: QueueDir(host.String()), N: cfg.Concurrency}}, nil
}

// ParseHost reads a host as parley.toml gives it: host:port or a URL; empty
// means OLLAMA_HOST, else 127.0.0.1:11434, as Ollama's own tools read it.
func ParseHost(h string) (*url.URL, error) {
	orig := h
	if h == "" {
		return envconfig.Host(), nil
	}
	if !strings.Contains(h, "://") {
		h = "http://" + h
	}
	u, err := url.Parse(h)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("host %q is not host:port or an http URL", orig)
	}
	return u, nil
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
	Duration     time.Duration `json:"duration_ns"`         // from asking to the answer, the wait for a turn included
	Queued       time.Duration `json:"queued_ns,omitempty"` // of which waiting for a turn on the server
	DoneReason   string        `json:"done_reason,omitempty"`
}

// Answer is the model's reply: JSON that parsed as an object, which the
// caller still validates field by field, and the tape of the call.
type Answer struct {
	JSON   json.RawMessage
	Tape   Tape
	Played bool // from a tape, not the model
}

// Tape is one call as it happened, written so a person can read exactly
// what the model saw and said, and so the call can be played again with no
// model running (Play).
type Tape struct {
	System string          `json:"system"`
	User   string          `json:"user"`
	Schema json.RawMessage `json:"schema"`
	Answer string          `json:"answer"`
	Error  string          `json:"error,omitempty"`
	Kind   string          `json:"kind,omitempty"` // how the call failed before an answer: unreachable, timeout, server
	Record Record          `json:"record"`
}

// The ways a call fails that a brain handles differently: a truncated or
// non-JSON answer is worth asking again; an unreachable server is not, so the
// brain falls back to its rules or escalates.
var (
	ErrTruncated   = errors.New("the answer was cut off before its end (raise max_tokens)")
	ErrNotJSON     = errors.New("the answer is not a JSON object")
	ErrUnreachable = errors.New("the Ollama server does not answer")
	ErrTimeout     = errors.New("no answer in time")
	ErrServer      = errors.New("the Ollama server refused the call")
)

// label is the context key of what a call is for, for the queue.
type label struct{}

// WithLabel says who makes the calls under ctx and what for ("procurement",
// "narrate restock-widget-1", in the root at root), as the server's queue
// shows them.
func WithLabel(ctx context.Context, agent, what, root string) context.Context {
	return context.WithValue(ctx, label{}, Holder{Agent: agent, What: what, Root: root})
}

// notDone is the done reason recorded for an answer the server ended
// without done = true.
const notDone = "not done"

var kinds = map[string]error{"unreachable": ErrUnreachable, "timeout": ErrTimeout, "server": ErrServer, "busy": ErrBusy}

// Ask makes one chat call. The answer's tape is filled in even when the
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
	if c.cfg.Context > 0 {
		req.Options["num_ctx"] = c.cfg.Context
	}
	prompt, err := json.Marshal(req)
	if err != nil {
		return Answer{}, fmt.Errorf("ollama: encode request: %w", err)
	}
	tape := Tape{System: call.System, User: call.User, Schema: call.Schema, Record: Record{Model: c.cfg.Model, PromptSHA256: hash(prompt)}}

	// The timeout counts the wait for a turn on the server: a call that
	// would wait past it fails as one the server did not answer in time.
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	h, _ := ctx.Value(label{}).(Holder)
	release, err := c.queue.Acquire(ctx, h)
	switch {
	case err == nil:
		defer release()
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		tape.Record.Duration = time.Since(start)
		tape.Kind, tape.Error = "busy", fmt.Sprintf("ollama %s: no turn within %s: other calls held the server", c.host, time.Since(start).Round(time.Millisecond))
		return Play(tape)
	case ctx.Err() != nil:
		return Answer{Tape: tape}, fmt.Errorf("ollama %s: %w", c.host, ctx.Err())
	default:
		// The queue's folder cannot be used (a read-only TMPDIR): the call
		// goes without a turn, as it would with no queue at all.
	}
	tape.Record.Queued = time.Since(start)
	var resp api.ChatResponse
	err = c.api.Chat(ctx, req, func(r api.ChatResponse) error {
		resp = r
		return nil
	})
	tape.Record.Duration = time.Since(start)
	if err != nil {
		var se api.StatusError
		switch {
		case errors.As(err, &se):
			tape.Kind, tape.Error = "server", fmt.Sprintf("ollama %s, model %s: %v", c.host, c.cfg.Model, err)
		case errors.Is(err, context.DeadlineExceeded):
			tape.Kind, tape.Error = "timeout", fmt.Sprintf("ollama %s, model %s: no answer within %s", c.host, c.cfg.Model, c.cfg.Timeout)
			if tape.Record.Duration < c.cfg.Timeout {
				tape.Error = fmt.Sprintf("ollama %s, model %s: no answer after %s, when the step's answer was due", c.host, c.cfg.Model, tape.Record.Duration.Round(time.Millisecond))
			}
		case ctx.Err() != nil:
			return Answer{Tape: tape}, fmt.Errorf("ollama %s: %w", c.host, err)
		default:
			tape.Kind, tape.Error = "unreachable", fmt.Sprintf("ollama %s: %v", c.host, err)
		}
		return Play(tape)
	}
	tape.Record.PromptTokens = resp.PromptEvalCount
	tape.Record.AnswerTokens = resp.EvalCount
	tape.Record.DoneReason = resp.DoneReason
	if !resp.Done {
		// The server ended the answer without saying it was done (seen
		// when its runner stops mid-answer): what came is not whole.
		tape.Record.DoneReason = notDone
	}
	tape.Answer = resp.Message.Content
	tape.Record.AnswerSHA256 = hash([]byte(tape.Answer))
	return Play(tape)
}

// Play returns what a call with this tape returns: the same answer, or the
// same error, so a recorded call can stand in for the model.
func Play(t Tape) (Answer, error) {
	ans := Answer{Tape: t}
	if t.Kind != "" {
		kind, ok := kinds[t.Kind]
		if !ok {
			kind = ErrServer
		}
		return ans, fmt.Errorf("%w: %s", kind, t.Error)
	}
	switch t.Record.DoneReason {
	case "length":
		return ans, fmt.Errorf("ollama model %s: %w after %d tokens", t.Record.Model, ErrTruncated, t.Record.AnswerTokens)
	case notDone:
		return ans, fmt.Errorf("ollama model %s: %w: the server stopped before the answer was done", t.Record.Model, ErrTruncated)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(t.Answer), &obj); err != nil {
		return ans, fmt.Errorf("ollama model %s: %w: %v", t.Record.Model, ErrNotJSON, err)
	}
	if obj == nil { // the answer was null
		return ans, fmt.Errorf("ollama model %s: %w: null", t.Record.Model, ErrNotJSON)
	}
	ans.JSON = json.RawMessage(t.Answer)
	return ans, nil
}

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
