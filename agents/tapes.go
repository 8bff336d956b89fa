package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/parley-dev/parley/agents/llm"
	"github.com/parley-dev/parley/mailbox"
)

// Tapes is an agent's folder of recorded model calls, ROOT/NAME/state/llm/:
// one KEY.json a call, holding what the model was asked (system and user
// prompt, schema) and what it answered, for a person to read, for a step
// taken again after a restart to get the same answer, and for replay.
type Tapes struct{ Dir string }

// TapesOf is the tape folder of agent name in root.
func TapesOf(root, name string) Tapes { return Tapes{Dir: filepath.Join(root, name, "state", "llm")} }

// Path is the file of the call with this key.
func (t Tapes) Path(key string) string { return filepath.Join(t.Dir, key+".json") }

// Load reads the tape of a call; ok is false when there is none.
func (t Tapes) Load(key string) (tape llm.Tape, ok bool, err error) {
	data, err := os.ReadFile(t.Path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return tape, false, nil
	}
	if err != nil {
		return tape, false, fmt.Errorf("read tape: %w", err)
	}
	if err := json.Unmarshal(data, &tape); err != nil {
		return tape, false, fmt.Errorf("read tape %s: %w", t.Path(key), err)
	}
	return tape, true, nil
}

// Save writes the tape of a call durably.
func (t Tapes) Save(key string, tape llm.Tape) error {
	data, err := json.MarshalIndent(tape, "", "  ")
	if err != nil {
		return fmt.Errorf("save tape: %w", err)
	}
	if err := os.MkdirAll(t.Dir, 0o755); err != nil {
		return fmt.Errorf("save tape: %w", err)
	}
	return mailbox.WriteDurable(t.Path(key), append(data, '\n'))
}

// Recording returns an ask that plays a call's tape when there is one (the
// same step, taken again after a restart) and otherwise asks the model and
// keeps the tape. A call the server never answered (unreachable, timed
// out) is taped too, as the record of no answer that replay plays and the
// ledger names, but it is not played here: the same step taken again, once
// the server is back, asks the model again.
func (t Tapes) Recording(ask func(context.Context, llm.Call) (llm.Answer, error)) func(context.Context, string, llm.Call) (llm.Answer, error) {
	return func(ctx context.Context, key string, c llm.Call) (llm.Answer, error) {
		if ans, err, ok := t.play(key); ok && !unanswered(ans.Tape) {
			return ans, err
		}
		ans, err := ask(ctx, c)
		if errors.Is(ctx.Err(), context.Canceled) {
			if err == nil {
				err = ctx.Err()
			}
			return ans, err // stopped: the call did not really happen
		}
		// A call cut at the step's deadline is taped as the client said it
		// ended (timeout, busy): the ledger names its tape.
		if serr := t.Save(key, ans.Tape); serr != nil {
			return ans, serr
		}
		return ans, err
	}
}

// unanswered reports whether a tape is the record of a call the server
// never answered.
func unanswered(tape llm.Tape) bool {
	return tape.Kind == "unreachable" || tape.Kind == "timeout" || tape.Kind == "busy"
}

// ErrNoTape is a replayed call that was never recorded: the prompt differs
// from the one the model got (the thread, the prompt file, the policy or
// the code changed).
var ErrNoTape = errors.New("no recorded answer for this call")

// Playing returns an ask that only plays tapes, for replay: no model runs.
func (t Tapes) Playing() func(context.Context, string, llm.Call) (llm.Answer, error) {
	return func(_ context.Context, key string, c llm.Call) (llm.Answer, error) {
		if ans, err, ok := t.play(key); ok {
			return ans, err
		}
		return llm.Answer{Tape: llm.Tape{System: c.System, User: c.User, Schema: c.Schema}}, fmt.Errorf("%w (%s)", ErrNoTape, t.Path(key))
	}
}

func (t Tapes) play(key string) (llm.Answer, error, bool) {
	tape, ok, err := t.Load(key)
	if err != nil {
		return llm.Answer{}, err, true
	}
	if !ok {
		return llm.Answer{}, nil, false
	}
	ans, err := llm.Play(tape)
	ans.Played = true
	return ans, err, true
}
