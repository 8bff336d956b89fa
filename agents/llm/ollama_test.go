package llm

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

var verbSchema = json.RawMessage(`{"type":"object","required":["verb"],"properties":{"verb":{"type":"string","enum":["QUOTE","DECLINE"]}}}`)

// fakeOllama answers /api/chat the way Ollama does, with reply's content and
// done reason, and hands back each request it got as the api client sent it.
func fakeOllama(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, req api.ChatRequest)) (*httptest.Server, <-chan api.ChatRequest) {
	t.Helper()
	got := make(chan api.ChatRequest, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/chat" {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		var req api.ChatRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		got <- req
		handle(w, r, req)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func reply(content, doneReason string) func(http.ResponseWriter, *http.Request, api.ChatRequest) {
	return func(w http.ResponseWriter, _ *http.Request, req api.ChatRequest) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(api.ChatResponse{
			Model:      req.Model,
			Message:    api.Message{Role: "assistant", Content: content},
			Done:       true,
			DoneReason: doneReason,
			Metrics:    api.Metrics{PromptEvalCount: 36, EvalCount: 29},
		})
	}
}

func TestAsk(t *testing.T) {
	tests := []struct {
		name       string
		content    string
		doneReason string
		wantErr    error
	}{
		{"an answer under the schema", `{"verb": "QUOTE"}`, "stop", nil},
		{"whitespace anywhere", "{ \"verb\"\n :\n\"DECLINE\"\n    } ", "stop", nil},
		{"a number past float64 is still JSON", `{"verb": "QUOTE", "unit_price": 2E954379}`, "stop", nil},
		{"cut off by num_predict", `{"a`, "length", ErrTruncated},
		{"prose, not JSON", `Sure! I accept.`, "stop", ErrNotJSON},
		{"a JSON array", `["QUOTE"]`, "stop", ErrNotJSON},
		{"null", `null`, "stop", ErrNotJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := fakeOllama(t, reply(tt.content, tt.doneReason))
			c, err := New(Config{Model: "tiny", Host: srv.URL, Seed: 7, Temperature: 0.5})
			if err != nil {
				t.Fatal(err)
			}
			ans, err := c.Ask(context.Background(), Call{System: "You are a vendor.", User: "Quote 10 widgets.", Schema: verbSchema})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			req := <-got
			if req.Model != "tiny" || len(req.Messages) != 2 || req.Messages[0].Role != "system" || req.Messages[1].Content != "Quote 10 widgets." {
				t.Errorf("request = %+v", req)
			}
			if string(req.Format) != string(verbSchema) {
				t.Errorf("format = %s, want the schema", req.Format)
			}
			if req.Stream == nil || *req.Stream {
				t.Error("the request streams; one answer is wanted")
			}
			if req.Options["seed"] != float64(7) || req.Options["temperature"] != 0.5 || req.Options["num_predict"] != float64(512) {
				t.Errorf("options = %v", req.Options)
			}
			r := ans.Tape.Record
			if r.Model != "tiny" || r.PromptTokens != 36 || r.AnswerTokens != 29 || r.DoneReason != tt.doneReason {
				t.Errorf("record = %+v", r)
			}
			if len(r.PromptSHA256) != 64 || r.AnswerSHA256 != hash([]byte(tt.content)) {
				t.Errorf("record hashes = %s %s", r.PromptSHA256, r.AnswerSHA256)
			}
			if ans.Tape.System != "You are a vendor." || ans.Tape.User != "Quote 10 widgets." || ans.Tape.Answer != tt.content {
				t.Errorf("tape = %+v", ans.Tape)
			}
			// Played again from its tape, the call comes out the same.
			again, perr := Play(ans.Tape)
			if !errors.Is(perr, tt.wantErr) || string(again.JSON) != string(ans.JSON) {
				t.Errorf("Play = %s, %v; want %s, %v", again.JSON, perr, ans.JSON, err)
			}
			if tt.wantErr == nil && string(ans.JSON) != tt.content {
				t.Errorf("answer = %s, want %s", ans.JSON, tt.content)
			}
			if tt.wantErr != nil && ans.JSON != nil {
				t.Errorf("a refused answer came back: %s", ans.JSON)
			}
		})
	}
}

func TestAskFailures(t *testing.T) {
	t.Run("a refused connection", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens there now
		c, err := New(Config{Model: "tiny", Host: addr})
		if err != nil {
			t.Fatal(err)
		}
		ans, err := c.Ask(context.Background(), Call{User: "x", Schema: verbSchema})
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), addr) {
			t.Fatalf("err = %v, want ErrUnreachable naming %s", err, addr)
		}
		if _, perr := Play(ans.Tape); !errors.Is(perr, ErrUnreachable) || perr.Error() != err.Error() {
			t.Errorf("Play = %v, want %v", perr, err)
		}
	})
	t.Run("a server slower than the timeout", func(t *testing.T) {
		srv, _ := fakeOllama(t, func(w http.ResponseWriter, r *http.Request, req api.ChatRequest) {
			<-r.Context().Done() // no answer until the client has given up
		})
		c, err := New(Config{Model: "tiny", Host: srv.URL, Timeout: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Ask(context.Background(), Call{User: "x", Schema: verbSchema})
		if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "no answer within 50ms") {
			t.Fatalf("err = %v, want the timeout named", err)
		}
	})
	t.Run("an answer the server ends without done", func(t *testing.T) {
		// What a real server sent when its runner stopped mid-answer.
		srv, _ := fakeOllama(t, func(w http.ResponseWriter, _ *http.Request, req api.ChatRequest) {
			w.Write([]byte(`{"model":"tiny","message":{"role":"assistant","content":"{ \"texts\"\n : [\n\"bhhh"},"done":false}`))
		})
		c, err := New(Config{Model: "tiny", Host: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		ans, err := c.Ask(context.Background(), Call{User: "x", Schema: verbSchema})
		if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "stopped before the answer was done") {
			t.Fatalf("err = %v, want ErrTruncated", err)
		}
		if _, perr := Play(ans.Tape); !errors.Is(perr, ErrTruncated) {
			t.Errorf("Play = %v", perr)
		}
	})
	t.Run("a model without think, or not pulled", func(t *testing.T) {
		srv, _ := fakeOllama(t, func(w http.ResponseWriter, _ *http.Request, req api.ChatRequest) {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"model \"tiny\" not found, try pulling it first"}`))
		})
		c, err := New(Config{Model: "tiny", Host: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Ask(context.Background(), Call{User: "x", Schema: verbSchema})
		if !errors.Is(err, ErrServer) || !strings.Contains(err.Error(), "try pulling it") {
			t.Fatalf("err = %v, want the server's 404 and its words", err)
		}
	})
}

func TestNew(t *testing.T) {
	t.Setenv("OLLAMA_HOST", "127.0.0.1:9999")
	tests := []struct {
		cfg      Config
		wantHost string
		wantErr  string
	}{
		{Config{Model: "m"}, "http://127.0.0.1:9999", ""},
		{Config{Model: "m", Host: "10.0.0.2:11434"}, "http://10.0.0.2:11434", ""},
		{Config{Model: "m", Host: "https://gpu.lan:8443"}, "https://gpu.lan:8443", ""},
		{Config{}, "", "no model named"},
		{Config{Model: "m", Host: "http://"}, "", "not host:port or an http URL"},
	}
	for _, tt := range tests {
		c, err := New(tt.cfg)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New(%+v) err = %v, want %q", tt.cfg, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("New(%+v): %v", tt.cfg, err)
		}
		if c.Host() != tt.wantHost {
			t.Errorf("New(%+v) host = %s, want %s", tt.cfg, c.Host(), tt.wantHost)
		}
	}
}
