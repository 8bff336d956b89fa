// Package fakeollama is an Ollama server for tests: it speaks /api/chat and
// /api/tags as Ollama does, on loopback, and answers each chat as the test
// says — a model that follows the schema, one that does not, one that is
// slow, or one that obeys whatever a vendor wrote.
package fakeollama

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"

	"github.com/ollama/ollama/api"
)

// Reply is one answer: content and done reason, or an HTTP error, or no
// answer until the client gives up.
type Reply struct {
	Content    string
	DoneReason string // "stop" when empty
	Status     int    // an HTTP error status, with Error as its message
	Error      string
	Hang       bool
}

// Server is a running fake.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	requests []api.ChatRequest
}

// Requests are the chat requests received so far, as the client sent them.
func (s *Server) Requests() []api.ChatRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Start serves answer on a loopback port until Close. Models lists the
// models /api/tags reports as pulled.
func Start(answer func(api.ChatRequest) Reply, models ...string) *Server {
	s := &Server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/tags":
			var list api.ListResponse
			for _, m := range models {
				list.Models = append(list.Models, api.ListModelResponse{Name: m, Model: m})
			}
			json.NewEncoder(w).Encode(list)
			return
		case r.URL.Path == "/api/version":
			json.NewEncoder(w).Encode(map[string]string{"version": "fake"})
			return
		case r.URL.Path == "/" || r.URL.Path == "":
			w.Write([]byte("Ollama is running"))
			return
		case r.Method != http.MethodPost || r.URL.Path != "/api/chat":
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		var req api.ChatRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.requests = append(s.requests, req)
		s.mu.Unlock()
		rep := answer(req)
		switch {
		case rep.Hang:
			<-r.Context().Done()
			return
		case rep.Status != 0:
			w.WriteHeader(rep.Status)
			json.NewEncoder(w).Encode(map[string]string{"error": rep.Error})
			return
		}
		if rep.DoneReason == "" {
			rep.DoneReason = "stop"
		}
		json.NewEncoder(w).Encode(api.ChatResponse{
			Model:      req.Model,
			Message:    api.Message{Role: "assistant", Content: rep.Content},
			Done:       true,
			DoneReason: rep.DoneReason,
			Metrics:    api.Metrics{PromptEvalCount: len(req.Messages[len(req.Messages)-1].Content) / 4, EvalCount: len(rep.Content) / 4},
		})
	}))
	return s
}

// Schema is the part of a JSON schema the fake reads.
type Schema struct {
	Type       string             `json:"type"`
	Properties map[string]*Schema `json:"properties"`
	Required   []string           `json:"required"`
	Enum       []string           `json:"enum"`
	Pattern    string             `json:"pattern"`
	MinItems   int                `json:"minItems"`
	Items      *Schema            `json:"items"`
}

// Follow answers under the request's schema, as a well-behaved model does:
// pick chooses the value of each field (its name, and its enum if it has
// one); a field pick leaves "" gets a plain default.
func Follow(req api.ChatRequest, pick func(field string, enum []string) string) Reply {
	var s Schema
	if err := json.Unmarshal(req.Format, &s); err != nil {
		return Reply{Content: "I cannot read that."}
	}
	out := map[string]any{}
	for name, p := range s.Properties {
		v := pick(name, p.Enum)
		switch {
		case p.Type == "boolean":
			out[name] = v != "false"
		case p.Type == "array":
			texts := make([]string, p.MinItems)
			for i := range texts {
				texts[i] = "Thank you. " + strings.TrimSpace(v+" Please see the details of this message.")
			}
			out[name] = texts
		case v != "":
			out[name] = v
		case len(p.Enum) > 0:
			out[name] = p.Enum[0]
		default:
			out[name] = ""
		}
	}
	data, _ := json.Marshal(out)
	return Reply{Content: string(data)}
}

// User is the user prompt of a request: the thread and the task.
func User(req api.ChatRequest) string { return req.Messages[len(req.Messages)-1].Content }

// System is the system prompt of a request: the role and what binds it.
func System(req api.ChatRequest) string { return req.Messages[0].Content }
