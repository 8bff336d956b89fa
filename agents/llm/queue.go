package llm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// One Ollama server serves every agent on the machine in turn: a queue of
// slots per server, shared by every process, keeps the calls in flight to
// the number it serves at once, so that a call waits its turn here —
// within its own timeout — rather than piling up on the server until
// every call times out. A slot is a file held with flock: a process that
// dies lets go of it with its last descriptor, and nothing is left to
// clean up. A call waiting for a slot says so in a file of its own.

// Queue is the slots of one server.
type Queue struct {
	Dir string // QueueDir(host)
	N   int    // calls at once; 0 means 1
}

// QueueDir is where the slots of the server at host live: one folder per
// server and user, in the system's temporary directory, whatever root the
// agents run in — every team on the machine shares the server.
func QueueDir(host string) string {
	sum := sha256.Sum256([]byte(host))
	name := strings.NewReplacer(":", "_", "/", "_").Replace(strings.TrimPrefix(strings.TrimPrefix(host, "http://"), "https://"))
	return filepath.Join(os.TempDir(), fmt.Sprintf("parley-%d", os.Getuid()), "ollama", name+"-"+hex.EncodeToString(sum[:4]))
}

// Holder is a call in flight, or waiting for a slot.
type Holder struct {
	Agent string    `json:"agent"`
	What  string    `json:"what"` // narrate restock-widget-1
	Root  string    `json:"root,omitempty"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
}

// ErrBusy is a call that found no free slot on its server within its
// timeout: the server was busy with other agents' calls.
var ErrBusy = errors.New("the Ollama server is busy with other calls")

// pollEvery is how often a waiting call tries the slots again: flock
// cannot be waited on with a deadline, and a call lasts seconds.
const pollEvery = 25 * time.Millisecond

var waits atomic.Int64 // numbers this process's wait files

// Acquire waits for a free slot until ctx is done, and returns the
// function that frees it. Waiting, it says so in a wait file; holding
// the slot, the slot's file names h.
func (q Queue) Acquire(ctx context.Context, h Holder) (release func(), err error) {
	if err := os.MkdirAll(q.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("model queue: %w", err)
	}
	h.PID = os.Getpid()
	if h.Since.IsZero() {
		h.Since = time.Now()
	}
	n := max(q.N, 1)
	var wait string
	defer func() {
		if wait != "" {
			os.Remove(wait)
		}
	}()
	for {
		for i := range n {
			f, err := os.OpenFile(filepath.Join(q.Dir, "slot-"+strconv.Itoa(i)), os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				return nil, fmt.Errorf("model queue: %w", err)
			}
			if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
				f.Close()
				if errors.Is(err, unix.EWOULDBLOCK) {
					continue
				}
				return nil, fmt.Errorf("model queue: %w", err)
			}
			held := h
			held.Since = time.Now()
			data, _ := json.Marshal(held)
			f.Truncate(0)
			f.WriteAt(data, 0)
			return func() {
				f.Truncate(0)
				unix.Flock(int(f.Fd()), unix.LOCK_UN)
				f.Close()
			}, nil
		}
		if wait == "" {
			sweep(q.Dir)
			wait = filepath.Join(q.Dir, fmt.Sprintf("wait-%d-%d", h.PID, waits.Add(1)))
			data, _ := json.Marshal(h)
			os.WriteFile(wait, data, 0o600)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// InFlight lists the calls that hold a slot of the server whose queue is
// dir, and those that wait for one, oldest first; it changes nothing.
func InFlight(dir string) (calls, waiting []Holder) {
	names, _ := os.ReadDir(dir)
	for _, e := range names {
		path := filepath.Join(dir, e.Name())
		switch {
		case strings.HasPrefix(e.Name(), "slot-"):
			f, err := os.Open(path)
			if err != nil {
				continue
			}
			err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
			if err == nil {
				unix.Flock(int(f.Fd()), unix.LOCK_UN) // free
			} else if h, ok := readHolder(path); ok {
				calls = append(calls, h)
			}
			f.Close()
		case strings.HasPrefix(e.Name(), "wait-"):
			// A waiter that died left its file: its process is gone.
			if h, ok := readHolder(path); ok && unix.Kill(h.PID, 0) == nil {
				waiting = append(waiting, h)
			}
		}
	}
	for _, l := range [][]Holder{calls, waiting} {
		sort.Slice(l, func(i, j int) bool { return l[i].Since.Before(l[j].Since) })
	}
	return calls, waiting
}

// sweep removes the wait files of processes that died waiting.
func sweep(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, "wait-*"))
	for _, path := range names {
		if h, ok := readHolder(path); ok && unix.Kill(h.PID, 0) == unix.ESRCH {
			os.Remove(path)
		}
	}
}

func readHolder(path string) (Holder, bool) {
	var h Holder
	data, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(data, &h) != nil {
		return h, false
	}
	return h, true
}
