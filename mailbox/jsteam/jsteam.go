// Package jsteam is the mailbox.Transport of a team on NATS JetStream
// (issue 10): the inboxes are one stream with a durable consumer per agent
// (mailbox/jsinbox), the ledger one stream appended with
// expected-last-sequence (mailbox/jsledger). A root whose parley.toml says
// transport = "nats://host:4222" runs on it; the agents, the policy and the
// commands are the same as on files.
package jsteam

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parley-dev/parley/internal/natsretry"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/mailbox/jsinbox"
	"github.com/parley-dev/parley/mailbox/jsledger"
)

// Config is a JetStream team's place and settings, written as a URL:
//
//	nats://host:4222[,nats://host2:4222...][?stream=PARLEY&replicas=3&claim=30s&patience=2m&dedupe=1h]
type Config struct {
	Servers  string        // the server URLs, comma-separated, as nats.Connect takes them
	Stream   string        // the team's name on the servers: streams NAME_INBOX and NAME_LEDGER, subjects name.inbox.AGENT and name.ledger; default PARLEY
	Replicas int           // copies of each stream in a cluster; default 1
	Claim    time.Duration // how long a claim lasts without word from its agent (then it is claimed again); default 30s
	Patience time.Duration // how long to wait out a server that cannot answer before failing; default 2m
	Dedupe   time.Duration // the window in which a message delivered again is stored once; default 1h
}

// IsURL reports whether a transport setting names NATS.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "nats://") || strings.HasPrefix(s, "tls://")
}

// ParseURL reads a transport setting.
func ParseURL(s string) (Config, error) {
	c := Config{Stream: "PARLEY", Replicas: 1, Claim: 30 * time.Second, Patience: 2 * time.Minute, Dedupe: time.Hour}
	servers, query, _ := strings.Cut(s, "?")
	for _, one := range strings.Split(servers, ",") {
		u, err := url.Parse(one)
		if err != nil || !IsURL(one) || u.Host == "" {
			return c, fmt.Errorf("transport %q: %q is not a server URL such as nats://127.0.0.1:4222", Redact(s), Redact(one))
		}
	}
	c.Servers = servers
	q, err := url.ParseQuery(query)
	if err != nil {
		return c, fmt.Errorf("transport %q: %w", Redact(s), err)
	}
	for k, vs := range q {
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "stream":
			if !streamName.MatchString(v) {
				err = errors.New("letters, digits, - and _")
			}
			c.Stream = v
		case "replicas":
			c.Replicas, err = strconv.Atoi(v)
			if err == nil && (c.Replicas < 1 || c.Replicas > 5) {
				err = errors.New("from 1 to 5")
			}
		case "claim", "patience", "dedupe":
			var d time.Duration
			d, err = time.ParseDuration(v)
			if err == nil && d <= 0 {
				err = errors.New("a duration above zero, such as 30s")
			}
			*map[string]*time.Duration{"claim": &c.Claim, "patience": &c.Patience, "dedupe": &c.Dedupe}[k] = d
		default:
			err = errors.New("not a setting (stream, replicas, claim, patience, dedupe)")
		}
		if err != nil {
			return c, fmt.Errorf("transport %q: %s=%s: %v", Redact(s), k, v, err)
		}
	}
	return c, nil
}

var streamName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// scheme starts each server URL of a transport setting.
var scheme = regexp.MustCompile(`(nats|tls)://`)

// Redact hides what a transport setting carries before each server's host
// (a user and password, or a token, which may hold any character), to be
// printed.
func Redact(s string) string {
	starts := scheme.FindAllStringIndex(s, -1)
	if len(starts) == 0 {
		return s
	}
	out := s[:starts[0][0]]
	for i, at := range starts {
		end := len(s)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		server := s[at[0]:end]
		if j := strings.LastIndexByte(server, '@'); j > at[1]-at[0] {
			server = server[:at[1]-at[0]] + "***" + server[j:]
		}
		out += server
	}
	return out
}

// HasSecret reports whether a transport setting carries a user, password
// or token.
func HasSecret(s string) bool { return Redact(s) != s }

// Team is a team's transport on JetStream: one connection, its inboxes and
// its ledger.
type Team struct {
	base    context.Context // every operation ends with it
	cfg     Config
	nc      *nats.Conn
	inboxes *jsinbox.Inboxes
	ledger  *jsledger.Ledger
	alive   jetstream.KeyValue    // agent: its lease (pid@host and root), beaten every second
	states  jetstream.ObjectStore // agent: its state, for whichever process holds its lease
}

// Dial connects to the servers and opens (creating) the team's streams.
// ctx bounds every operation of the team from then on: once it ends, what
// waits for a server that does not answer gives up (a process asked to
// stop does not wait out its patience).
func Dial(ctx context.Context, cfg Config, now func() time.Time) (*Team, error) {
	nc, err := nats.Connect(cfg.Servers, nats.Name("parley"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(false))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", Redact(cfg.Servers), err)
	}
	t, err := open(ctx, nc, cfg, now)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return t, nil
}

func open(base context.Context, nc *nats.Conn, cfg Config, now func() time.Time) (*Team, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream on %s: %w", Redact(cfg.Servers), err)
	}
	ctx, cancel := context.WithTimeout(base, cfg.Patience)
	defer cancel()
	t := &Team{base: base, cfg: cfg, nc: nc}
	err = natsretry.Do(ctx, func(ctx context.Context, _ bool) error {
		t.inboxes, err = jsinbox.Open(ctx, js, cfg.Stream+"_INBOX", strings.ToLower(cfg.Stream), cfg.Replicas, cfg.Claim, cfg.Dedupe)
		return err
	})
	if err != nil {
		return nil, err
	}
	err = natsretry.Do(ctx, func(ctx context.Context, _ bool) error {
		cfg := jetstream.KeyValueConfig{Bucket: cfg.Stream + "_ALIVE", TTL: time.Hour, Replicas: cfg.Replicas, Storage: jetstream.FileStorage}
		t.alive, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			t.alive, err = js.KeyValue(ctx, cfg.Bucket)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open %s_ALIVE: %w", cfg.Stream, err)
	}
	err = natsretry.Do(ctx, func(ctx context.Context, _ bool) error {
		// An object store, not a key-value bucket: a state (the ids of
		// every message handled) outgrows a message's 1 MB in time.
		cfg := jetstream.ObjectStoreConfig{Bucket: cfg.Stream + "_STATE", Replicas: cfg.Replicas, Storage: jetstream.FileStorage}
		t.states, err = js.CreateObjectStore(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			t.states, err = js.ObjectStore(ctx, cfg.Bucket)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open %s_STATE: %w", cfg.Stream, err)
	}
	err = natsretry.Do(ctx, func(ctx context.Context, _ bool) error {
		t.ledger, err = jsledger.Open(ctx, js, cfg.Stream+"_LEDGER", strings.ToLower(cfg.Stream), cfg.Replicas, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// LoadState is agent's state as its last holder saved it (nil: none).
func (t *Team) LoadState(agent string) ([]byte, error) {
	ctx, cancel := t.ctx()
	defer cancel()
	var data []byte
	err := natsretry.Do(ctx, func(ctx context.Context, _ bool) (err error) {
		data, err = t.states.GetBytes(ctx, agent)
		return err
	})
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load %s's state from %s_STATE: %w", agent, t.cfg.Stream, err)
	}
	return data, nil
}

// SaveState keeps agent's state on the server, stored (on every replica)
// before it returns.
func (t *Team) SaveState(agent string, data []byte) error {
	ctx, cancel := t.ctx()
	defer cancel()
	err := natsretry.Do(ctx, func(ctx context.Context, _ bool) error {
		_, err := t.states.PutBytes(ctx, agent, data)
		return err
	})
	if err != nil {
		return fmt.Errorf("save %s's state to %s_STATE: %w", agent, t.cfg.Stream, err)
	}
	return nil
}

// ctx bounds one operation by the team's patience with the servers.
func (t *Team) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.base, t.cfg.Patience)
}

// Put publishes the message on its recipient's subject, with its
// Message-ID as the Nats-Msg-Id: put again within the window, it is
// stored once.
func (t *Team) Put(m *mailbox.Message, data []byte, _ time.Time) (string, error) {
	ctx, cancel := t.ctx()
	defer cancel()
	dup, err := t.inboxes.Put(ctx, m.To, m.ID, data)
	if err != nil {
		return "", err
	}
	where := t.inboxes.Subject(m.To)
	if dup {
		where += " (again: stored once)"
	}
	return where, nil
}

// Journal is the ledger, read from its start.
func (t *Team) Journal() (mailbox.Journal, error) {
	return &journal{t: t, r: t.ledger.Follow()}, nil
}

// Since is the part of the ledger a copy lacks (mailbox.Copied).
func (t *Team) Since(seq uint64, hash string) ([]byte, bool, error) {
	ctx, cancel := t.ctx()
	defer cancel()
	return t.ledger.Since(ctx, seq, hash)
}

// Hold takes agent's lease (mailbox.Beater): created if no one holds
// it, taken over if its holder, of another root, has not beaten within
// lapse, or (the same root: its lock file decides) at once. Two processes
// taking it at the same moment: one of them gets it.
func (t *Team) Hold(agent string, b mailbox.Beat, lapse time.Duration) (uint64, error) {
	data, err := json.Marshal(b)
	if err != nil {
		return 0, fmt.Errorf("hold %s: %w", agent, err)
	}
	ctx, cancel := t.ctx()
	defer cancel()
	var rev uint64
	err = natsretry.Do(ctx, func(ctx context.Context, _ bool) error {
		e, err := t.alive.Get(ctx, agent)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			rev, err = t.alive.Create(ctx, agent, data)
		} else if err == nil {
			if by, ok := beatOf(e); ok && by.Root != b.Root && time.Since(by.At) < lapse {
				return &mailbox.HeldError{Agent: agent, By: by}
			}
			rev, err = t.alive.Update(ctx, agent, data, e.Revision())
		}
		if errors.Is(err, jetstream.ErrKeyExists) { // taken between the look and the take
			if e, gerr := t.alive.Get(ctx, agent); gerr == nil {
				if by, ok := beatOf(e); ok {
					return &mailbox.HeldError{Agent: agent, By: by}
				}
			}
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("hold %s: %w", agent, err)
	}
	return rev, nil
}

// Beat renews agent's lease of revision rev (mailbox.Beater).
func (t *Team) Beat(agent string, b mailbox.Beat, rev uint64) (uint64, error) {
	data, err := json.Marshal(b)
	if err != nil {
		return rev, fmt.Errorf("beat %s: %w", agent, err)
	}
	ctx, cancel := context.WithTimeout(t.base, natsretry.Try)
	defer cancel()
	next, err := t.alive.Update(ctx, agent, data, rev)
	if errors.Is(err, jetstream.ErrKeyExists) {
		// Another revision: another process's, or this one's own beat whose
		// answer was lost (a leader change in a cluster takes the reply, not
		// the write). Only the first is a takeover.
		e, gerr := t.alive.Get(ctx, agent)
		if by, ok := beatOfEntry(e, gerr); ok && by.Who == b.Who && by.Root == b.Root {
			if next, err = t.alive.Update(ctx, agent, data, e.Revision()); err == nil {
				return next, nil
			}
		}
		if errors.Is(err, jetstream.ErrKeyExists) {
			return rev, fmt.Errorf("beat %s: %w", agent, mailbox.ErrLost)
		}
	}
	if err != nil {
		return rev, fmt.Errorf("beat %s: %w", agent, err)
	}
	return next, nil
}

// Gone gives up agent's lease of revision rev, if it is still this
// process's.
func (t *Team) Gone(agent string, rev uint64) error {
	ctx, cancel := context.WithTimeout(t.base, natsretry.Try)
	defer cancel()
	if err := t.alive.Delete(ctx, agent, jetstream.LastRevision(rev)); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("let go of %s: %w", agent, err)
	}
	return nil
}

// beatOf reads a lease's beat, with when it came.
func beatOf(e jetstream.KeyValueEntry) (mailbox.Beat, bool) {
	var b mailbox.Beat
	if err := json.Unmarshal(e.Value(), &b); err != nil {
		return b, false // not a beat of this parley's
	}
	b.At = e.Created()
	return b, true
}

// beatOfEntry is beatOf for what a Get returned.
func beatOfEntry(e jetstream.KeyValueEntry, err error) (mailbox.Beat, bool) {
	if err != nil || e == nil {
		return mailbox.Beat{}, false
	}
	return beatOf(e)
}

// Beats are the agents' last words that they are alive.
func (t *Team) Beats() (map[string]mailbox.Beat, error) {
	ctx, cancel := t.ctx()
	defer cancel()
	keys, err := t.alive.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("who is alive: %w", err)
	}
	out := map[string]mailbox.Beat{}
	for k := range keys.Keys() {
		e, err := t.alive.Get(ctx, k)
		if err != nil {
			continue // gone since the listing
		}
		if b, ok := beatOf(e); ok {
			out[k] = b
		}
	}
	return out, nil
}

// Close closes the connection, once what was published is flushed.
func (t *Team) Close() error {
	t.nc.Close()
	return nil
}

type journal struct {
	t *Team
	r *jsledger.Reader
}

func (j *journal) Append(entries ...mailbox.Entry) ([]mailbox.Entry, error) {
	ctx, cancel := j.t.ctx()
	defer cancel()
	return j.t.ledger.Append(ctx, entries...)
}

func (j *journal) Transact(fn func(news []mailbox.Entry) ([]mailbox.Entry, error)) ([]mailbox.Entry, error) {
	ctx, cancel := j.t.ctx()
	defer cancel()
	return j.r.Transact(ctx, fn)
}

func (j *journal) Close() error { return nil }

// Inbox is agent's durable consumer.
func (t *Team) Inbox(agent string) (mailbox.Inbox, error) {
	return &inbox{t: t, agent: agent, held: map[*jsinbox.Claimed]chan struct{}{}}, nil
}

type inbox struct {
	t     *Team
	agent string

	mu   sync.Mutex
	held map[*jsinbox.Claimed]chan struct{} // claims kept alive, and how to stop
}

// Next fetches the next message. Its claim is kept alive (an in-progress
// ack a third of the way into each claim period) until it is finished or
// set aside, or the inbox is closed: then, or if the process dies, the
// server delivers it again after the claim period.
func (in *inbox) Next(ctx context.Context) (*mailbox.Claimed, error) {
	for {
		deadline, ok := ctx.Deadline()
		wait := 5 * time.Second
		if ok {
			wait = min(wait, time.Until(deadline))
		}
		if wait < time.Millisecond || ctx.Err() != nil {
			return nil, cmp.Or(ctx.Err(), context.DeadlineExceeded)
		}
		c, err := in.t.inboxes.Claim(ctx, in.agent, wait)
		if errors.Is(err, jsinbox.ErrEmpty) {
			continue
		}
		if natsretry.Transient(err) {
			select { // the server is away: wait for it a little, then ask again
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		in.keep(c)
		return &mailbox.Claimed{Agent: in.agent, Data: c.Data, Where: c.Where(), Handle: c}, nil
	}
}

// keep renews c's claim until let go.
func (in *inbox) keep(c *jsinbox.Claimed) {
	stop := make(chan struct{})
	in.mu.Lock()
	in.held[c] = stop
	in.mu.Unlock()
	go func() {
		tick := time.NewTicker(in.t.cfg.Claim / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = c.Working() // a renewal lost is made again at the next tick
			}
		}
	}()
}

// let stops renewing c's claim.
func (in *inbox) let(c *jsinbox.Claimed) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if stop, ok := in.held[c]; ok {
		close(stop)
		delete(in.held, c)
	}
}

// Bring moves what waits for agent into the Maildir into, where a person
// reads it (the human's inbox, which no process claims): each message is
// delivered there durably, then taken off the stream. One whose
// Message-ID is there already (brought before a crash, not yet taken off)
// is only taken off, as is one in the Maildir's archive.
func (t *Team) Bring(agent string, into mailbox.Maildir, now time.Time) (int, error) {
	ctx, cancel := t.ctx()
	defer cancel()
	n := 0
	var have map[string]string
	for {
		c, err := t.inboxes.Claim(ctx, agent, 0)
		if errors.Is(err, jsinbox.ErrEmpty) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if have == nil {
			if have, err = into.IDs(); err != nil {
				return n, err
			}
			// And what a person has archived since: brought before a
			// crash, not taken off, then put away, it is not brought again.
			if a := into.Archive(); a.Exists() {
				put, err := a.IDs()
				if err != nil {
					return n, err
				}
				for id, p := range put {
					have[id] = filepath.Join(mailbox.ArchiveDir, p)
				}
			}
		}
		// A message that cannot be read goes in too: the human's inbox is
		// read by a person, who sees what is wrong with it.
		m, perr := mailbox.Parse(c.Data)
		if perr != nil || have[m.ID] == "" {
			name, err := into.Deliver(c.Data, now)
			if err != nil {
				return n, err
			}
			if perr == nil {
				have[m.ID] = filepath.Join("new", name)
			}
		}
		if err := c.Finish(ctx); err != nil {
			return n, err
		}
		n++
	}
}

// Peek lists what is in agent's inbox, claiming nothing
// (mailbox.Peeker).
func (t *Team) Peek(agent string) ([]mailbox.Peeked, error) {
	ctx, cancel := t.ctx()
	defer cancel()
	ws, err := t.inboxes.Peek(ctx, agent)
	if err != nil {
		return nil, err
	}
	out := make([]mailbox.Peeked, len(ws))
	for i, w := range ws {
		state := mailbox.StateNew
		if w.Claimed {
			state = mailbox.StateClaimed
		}
		out[i] = mailbox.Peeked{Data: w.Data, State: state, Time: w.Time,
			Where: t.inboxes.Where(agent, w.Seq)}
	}
	return out, nil
}

// Kept is every message the team's inboxes ever held, by Message-ID
// (mailbox.Keeper).
func (t *Team) Kept() (map[string][]byte, error) {
	ctx, cancel := t.ctx()
	defer cancel()
	out := map[string][]byte{}
	err := t.inboxes.Kept(ctx, func(_, id string, data []byte) error {
		if _, ok := out[id]; !ok {
			out[id] = data
		}
		return nil
	})
	return out, err
}

// Unfinished is what was claimed before a stop and not finished: the
// messages the consumer delivered and has not seen acknowledged, read
// without a claim (the stopped process's lapses by itself), so that they
// are handled first, as on files, not after newer ones. Finished then, each
// is delivered once more when that claim lapses, and found handled. One
// that is not a valid message waits for that delivery to be set aside.
func (in *inbox) Unfinished() ([]*mailbox.Claimed, error) {
	ctx, cancel := in.t.ctx()
	defer cancel()
	ws, err := in.t.inboxes.Peek(ctx, in.agent)
	if err != nil {
		return nil, err
	}
	var out []*mailbox.Claimed
	for _, w := range ws {
		if !w.Claimed {
			continue
		}
		if m, err := mailbox.Parse(w.Data); err != nil || m.Validate() != nil {
			continue
		}
		out = append(out, &mailbox.Claimed{Agent: in.agent, Data: w.Data, Handle: &w,
			Where: in.t.inboxes.Where(in.agent, w.Seq)})
	}
	return out, nil
}

// Finish acknowledges the message; a failed one is kept first, with the
// reason, where a set-aside one is.
func (in *inbox) Finish(c *mailbox.Claimed, flags, reason string) (string, error) {
	if strings.Contains(flags, mailbox.FlagFailed) {
		return in.SetAside(c, "failed: "+reason)
	}
	if _, ok := c.Handle.(*jsinbox.Waiting); ok {
		return c.Where, nil // acknowledged when its lapsing claim brings it again
	}
	jc, err := held(c)
	if err != nil {
		return "", err
	}
	ctx, cancel := in.t.ctx()
	defer cancel()
	defer in.let(jc)
	if err := jc.Finish(ctx); errors.Is(err, jsinbox.ErrUnacknowledged) {
		// Handled, and recorded so: when it comes again it is finished as
		// already handled, not handled twice.
		return jc.Where() + "; acknowledged when it comes again", nil
	} else if err != nil {
		return "", err
	}
	return jc.Where(), nil
}

// SetAside keeps the message on parley.rejected.AGENT with why, and
// acknowledges it.
func (in *inbox) SetAside(c *mailbox.Claimed, why string) (string, error) {
	ctx, cancel := in.t.ctx()
	defer cancel()
	if w, ok := c.Handle.(*jsinbox.Waiting); ok {
		return in.t.inboxes.Keep(ctx, in.agent, w.Seq, w.Data, why)
	}
	jc, err := held(c)
	if err != nil {
		return "", err
	}
	defer in.let(jc)
	return jc.SetAside(ctx, why)
}

// held is the JetStream claim behind c.
func held(c *mailbox.Claimed) (*jsinbox.Claimed, error) {
	jc, ok := c.Handle.(*jsinbox.Claimed)
	if !ok {
		return nil, fmt.Errorf("%s: not claimed from JetStream", c.Where)
	}
	return jc, nil
}

// Release stops renewing the claim and gives the message back to the
// server, which delivers it again at once.
func (in *inbox) Release(c *mailbox.Claimed) {
	if jc, err := held(c); err == nil {
		in.let(jc)
		_ = jc.Release() // not given back: it lapses after the claim period
	}
}

// Close lets go of every claim still held: the server delivers those
// messages again after the claim period.
func (in *inbox) Close() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	for c, stop := range in.held {
		close(stop)
		delete(in.held, c)
	}
	return nil
}
