// Package jsinbox keeps the agents' inboxes in NATS JetStream (issue 10, a
// part): a message to NAME is published on parley.inbox.NAME with its
// Message-ID as the Nats-Msg-Id, so a repeat within the duplicate window is
// stored once; each agent's inbox is a durable pull consumer on its subject
// with explicit acks. A claim lasts the consumer's ack wait (renewed with
// Working); a claim never finished — the agent crashed — is delivered
// again; a finished one is acknowledged, and kept in the stream as the
// Maildir's cur/ keeps it: the evidence behind the ledger's lines. The same
// guarantees as the Maildir's rename, across machines.
package jsinbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parley-dev/parley/internal/natsretry"
	"github.com/parley-dev/parley/internal/streams"
)

// Subjects of the inboxes, under a team's base subject (parley unless
// said): BASE.inbox.NAME; what an agent set aside is kept, with why, on
// BASE.rejected.NAME, which nobody consumes.
const (
	inboxes  = ".inbox."
	rejected = ".rejected."
)

// ReasonHeader carries why a message was set aside.
const ReasonHeader = "Parley-Reason"

// Inboxes are the inboxes of a team in one stream.
type Inboxes struct {
	js      jetstream.JetStream
	stream  string
	base    string // the subjects' first token
	ackWait time.Duration

	mu        sync.Mutex
	consumers map[string]jetstream.Consumer // agent: its inbox's consumer, made once
}

// Open opens (or creates) the stream called name that holds the inboxes,
// on subjects under base (such as parley: parley.inbox.NAME). ackWait is how long a claim lasts unless renewed; dedupe is the window in
// which a message delivered again under the same id is stored once.
func Open(ctx context.Context, js jetstream.JetStream, name, base string, replicas int, ackWait, dedupe time.Duration) (*Inboxes, error) {
	cfg := jetstream.StreamConfig{
		Name: name, Subjects: []string{base + inboxes + ">", base + rejected + ">"}, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
		Retention:  jetstream.LimitsPolicy, // kept once handled, with no limit: the evidence
		Discard:    jetstream.DiscardNew,   // never the oldest
		Duplicates: dedupe,
	}
	if _, err := streams.Ensure(ctx, js, cfg); err != nil {
		return nil, fmt.Errorf("open inboxes %s: %w", name, err)
	}
	return &Inboxes{js: js, stream: name, base: base, ackWait: ackWait, consumers: map[string]jetstream.Consumer{}}, nil
}

// Put stores data, a message to agent with id, in agent's inbox, once:
// put again under the same id within the window, it is not stored twice
// (dup is true). While the server cannot answer, it tries again.
func (in *Inboxes) Put(ctx context.Context, agent, id string, data []byte) (dup bool, err error) {
	var ack *jetstream.PubAck
	err = natsretry.Do(ctx, func(ctx context.Context, _ bool) error {
		ack, err = in.js.Publish(ctx, in.Subject(agent), data, jetstream.WithMsgID(id))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("deliver %s to %s: %w", id, agent, err)
	}
	return ack.Duplicate, nil
}

// Claimed is a message taken from an inbox, until it is finished or set
// aside.
type Claimed struct {
	Agent      string
	Data       []byte // the message as delivered
	Deliveries uint64 // 1 the first time; more when a claim before it was never finished
	Seq        uint64 // its place in the stream
	in         *Inboxes
	msg        jetstream.Msg
}

// ErrEmpty says no message waited in the inbox.
var ErrEmpty = errors.New("the inbox is empty")

// Claim takes the next message for agent, waiting for one up to wait (0:
// not at all). No other claim gets it while the claim lasts.
func (in *Inboxes) Claim(ctx context.Context, agent string, wait time.Duration) (*Claimed, error) {
	cons, err := in.consumer(ctx, agent)
	if err != nil {
		return nil, err
	}
	var batch jetstream.MessageBatch
	if wait > 0 {
		batch, err = cons.Fetch(1, jetstream.FetchMaxWait(wait))
	} else {
		batch, err = cons.FetchNoWait(1)
	}
	if err != nil {
		in.forget(agent, err)
		return nil, fmt.Errorf("claim from %s: %w", agent, err)
	}
	msg, ok := <-batch.Messages()
	if !ok {
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			in.forget(agent, err)
			return nil, fmt.Errorf("claim from %s: %w", agent, err)
		}
		return nil, ErrEmpty
	}
	meta, err := msg.Metadata()
	if err != nil {
		return nil, fmt.Errorf("claim from %s: %w", agent, err)
	}
	return &Claimed{Agent: agent, Data: msg.Data(), Deliveries: meta.NumDelivered, Seq: meta.Sequence.Stream, in: in, msg: msg}, nil
}

// Waiting is a message in an inbox, as Peek lists it.
type Waiting struct {
	Data    []byte
	Seq     uint64
	Time    time.Time // when it was stored
	Claimed bool      // delivered to a claim not yet finished
}

// Peek lists the messages in agent's inbox, oldest first, claiming none:
// those waiting, and those claimed but not finished.
func (in *Inboxes) Peek(ctx context.Context, agent string) ([]Waiting, error) {
	st, err := in.js.Stream(ctx, in.stream)
	if err != nil {
		return nil, fmt.Errorf("peek into %s: %w", agent, err)
	}
	// What the agent's consumer finished and delivered (nothing, if it has
	// never claimed: the consumer is not made for a look).
	var finished, delivered uint64
	cons, err := in.js.Consumer(ctx, in.stream, "inbox-"+agent)
	if err == nil {
		ci, err := cons.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("peek into %s: %w", agent, err)
		}
		finished, delivered = ci.AckFloor.Stream, ci.Delivered.Stream
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("peek into %s: %w", agent, err)
	}
	var out []Waiting
	for seq := finished + 1; ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(in.Subject(agent)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("peek into %s: %w", agent, err)
		}
		// Past the last message finished in order: delivered is claimed
		// (or finished out of order, while one before it is held).
		out = append(out, Waiting{Data: m.Data, Seq: m.Sequence, Time: m.Time, Claimed: m.Sequence <= delivered})
		seq = m.Sequence + 1
	}
}

// Kept calls fn with every message ever delivered to an inbox, in order:
// its subject, its Message-ID (as published) and its bytes. It reads all
// of them, or fails saying how many came.
func (in *Inboxes) Kept(ctx context.Context, fn func(subject, id string, data []byte) error) error {
	st, err := in.js.Stream(ctx, in.stream)
	if err != nil {
		return fmt.Errorf("read %s: %w", in.stream, err)
	}
	filter := in.Subject(">")
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return fmt.Errorf("read %s: %w", in.stream, err)
	}
	want := uint64(0)
	for _, n := range info.State.Subjects {
		want += n
	}
	if want == 0 {
		return nil
	}
	cons, done, err := streams.Read(ctx, st, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return fmt.Errorf("read %s: %w", in.stream, err)
	}
	defer done()
	for got := uint64(0); got < want; {
		batch, err := cons.Fetch(int(min(want-got, 500)), jetstream.FetchMaxWait(natsretry.Try))
		if err != nil {
			return fmt.Errorf("read %s: %w", in.stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if err := fn(m.Subject(), m.Headers().Get(jetstream.MsgIDHeader), m.Data()); err != nil {
				return err
			}
		}
		if n == 0 {
			err := batch.Error()
			if err == nil {
				err = nats.ErrTimeout
			}
			return fmt.Errorf("read %s: %d of its %d messages came: %w", in.stream, got, want, err)
		}
		got += uint64(n)
	}
	return nil
}

// consumer is agent's inbox: a durable consumer, made once.
func (in *Inboxes) consumer(ctx context.Context, agent string) (jetstream.Consumer, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if c, ok := in.consumers[agent]; ok {
		return c, nil
	}
	cfg := jetstream.ConsumerConfig{
		Durable: "inbox-" + agent, FilterSubject: in.Subject(agent),
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: in.ackWait, DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	// Created, or taken as it is: its claim period is the one it was made
	// with (or an operator gave it), not each process's own.
	c, err := in.js.CreateConsumer(ctx, in.stream, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		c, err = in.js.Consumer(ctx, in.stream, cfg.Durable)
	}
	if err != nil {
		return nil, fmt.Errorf("inbox %s: %w", agent, err)
	}
	in.consumers[agent] = c
	return c, nil
}

// forget drops agent's consumer after an error that says it is gone
// (deleted by an operator, or lost with a server's state): the next claim
// makes it again.
func (in *Inboxes) forget(agent string, err error) {
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, nats.ErrNoResponders) {
		in.mu.Lock()
		delete(in.consumers, agent)
		in.mu.Unlock()
	}
}

// Working renews the claim: the handler is still at it.
func (c *Claimed) Working() error { return c.msg.InProgress() }

// Release ends the claim without finishing it: the server delivers the
// message again at once.
func (c *Claimed) Release() error { return c.msg.Nak() }

// Where says where the claimed message is, for the ledger.
func (c *Claimed) Where() string { return c.in.Where(c.Agent, c.Seq) }

// Subject is agent's inbox's subject.
func (in *Inboxes) Subject(agent string) string { return in.base + inboxes + agent }

// Where says where agent's message at stream sequence seq is, for the
// ledger and for people.
func (in *Inboxes) Where(agent string, seq uint64) string {
	return fmt.Sprintf("%s (stream %s, seq %d)", in.Subject(agent), in.stream, seq)
}

// ErrUnacknowledged says the server never answered a claim's
// acknowledgement: a server that restarted since the claim (killed, its
// state read back from disk) may not know the delivery any more. The
// message comes again, once its claim lapses or at once, and its agent,
// which has it as handled, finishes it then.
var ErrUnacknowledged = errors.New("the server did not answer the acknowledgement; the message comes again, and is finished then")

// ackFor is how long Finish tries to have its acknowledgement answered.
const ackFor = 2 * natsretry.Try

// Finish ends the claim: the message is done with, and the server has said
// so before Finish returns — or, where it never answers (ErrUnacknowledged),
// the message comes again to be finished.
func (c *Claimed) Finish(ctx context.Context) error {
	try, cancel := context.WithTimeout(ctx, ackFor)
	defer cancel()
	err := natsretry.Do(try, func(ctx context.Context, _ bool) error { return c.msg.DoubleAck(ctx) })
	switch {
	case err == nil:
		return nil
	case natsretry.Transient(err) && ctx.Err() == nil:
		return fmt.Errorf("finish %s: %w (%v)", c.Where(), ErrUnacknowledged, err)
	}
	return fmt.Errorf("finish %s: %w", c.Where(), err)
}

// SetAside takes the message out of the inbox for good: it is kept on
// parley.rejected.AGENT with why (first), then its claim ends. It says
// where it is kept.
func (c *Claimed) SetAside(ctx context.Context, why string) (string, error) {
	where, err := c.in.Keep(ctx, c.Agent, c.Seq, c.Data, why)
	if err != nil {
		return "", err
	}
	// Unacknowledged, it comes again and is kept again: stored once.
	if err := c.Finish(ctx); err != nil && !errors.Is(err, ErrUnacknowledged) {
		return "", err
	}
	return where, nil
}

// Keep keeps data, agent's message at stream sequence seq, on
// parley.rejected.AGENT with why, and says where. Kept again (after a
// crash), it is stored once.
func (in *Inboxes) Keep(ctx context.Context, agent string, seq uint64, data []byte, why string) (string, error) {
	out := &nats.Msg{Subject: in.base + rejected + agent, Data: data, Header: nats.Header{}}
	out.Header.Set(ReasonHeader, strings.Join(strings.Fields(why), " "))
	out.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("rejected-%s-%d", in.stream, seq))
	ack, err := in.js.PublishMsg(ctx, out)
	if err != nil {
		return "", fmt.Errorf("set aside %s's message %d: %w", agent, seq, err)
	}
	return fmt.Sprintf("%s%s%s (stream %s, seq %d)", in.base, rejected, agent, in.stream, ack.Sequence), nil
}
