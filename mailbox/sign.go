package mailbox

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/parley-dev/parley/internal/cmdline"
)

// SignatureHeader carries a message's signature: "ed25519 KEYID SIG", the
// key's fingerprint and the base64 signature over the signed form.
const SignatureHeader = "Signature"

// KeysDir is where a root keeps its agents' public keys (committed with
// the ledger); each agent's private key is in its own state/ folder.
const KeysDir = "keys"

// Errors a signature check returns; each is a reason to refuse a message.
var (
	ErrUnsigned     = errors.New("the message is not signed")
	ErrBadSignature = errors.New("the signature does not match the message")
	ErrUnknownKey   = errors.New("the message is signed with a key that is not its sender's")
	ErrRetiredKey   = errors.New("the message is signed with a key its sender had retired by then")
)

// signedForm is what a signature covers: the message written canonically
// without its Signature header. Writing is canonical, so what mail tools
// may change (CRLF for LF, a folded header) does not change it; any other
// change does.
func signedForm(m *Message) []byte {
	c := *m
	c.Extra = nil
	for _, h := range m.Extra {
		if !strings.EqualFold(h.Name, SignatureHeader) {
			c.Extra = append(c.Extra, h)
		}
	}
	return c.Marshal()
}

// Fingerprint names a public key: the first 8 bytes of its SHA-256, hex.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Sign signs m with the private key, replacing any signature it had.
func Sign(m *Message, priv ed25519.PrivateKey) {
	sig := ed25519.Sign(priv, signedForm(m))
	var extra []Header
	for _, h := range m.Extra {
		if !strings.EqualFold(h.Name, SignatureHeader) {
			extra = append(extra, h)
		}
	}
	value := "ed25519 " + Fingerprint(priv.Public().(ed25519.PublicKey)) + " " + base64.StdEncoding.EncodeToString(sig)
	m.Extra = append(extra, Header{Name: SignatureHeader, Value: value})
}

// Key is one public key of an agent; Retired is when it stopped being the
// agent's key (zero for the key in use).
type Key struct {
	Agent   string
	Public  ed25519.PublicKey
	Retired time.Time
}

// Keyring is the public keys of a root's agents, current and retired.
type Keyring map[string][]Key

// Verify checks that m is signed by a key of its sender that was in use at
// the message's Date.
func (k Keyring) Verify(m *Message) error {
	value, ok := m.Get(SignatureHeader)
	if !ok {
		return ErrUnsigned
	}
	f := strings.Fields(value)
	if len(f) != 3 || f[0] != "ed25519" {
		return fmt.Errorf("%w: %q is not \"ed25519 KEYID SIGNATURE\"", ErrBadSignature, truncate(value, 40))
	}
	sig, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: the signature is not base64 of %d bytes", ErrBadSignature, ed25519.SignatureSize)
	}
	for _, key := range k[m.From] {
		if Fingerprint(key.Public) != f[1] {
			continue
		}
		if !ed25519.Verify(key.Public, signedForm(m), sig) {
			return ErrBadSignature
		}
		if !key.Retired.IsZero() && !m.Date.Before(key.Retired) {
			return fmt.Errorf("%w (key %s, retired %s)", ErrRetiredKey, f[1], key.Retired.UTC().Format(time.RFC3339))
		}
		return nil
	}
	return fmt.Errorf("%w (%s of key %s)", ErrUnknownKey, m.From, f[1])
}

// publicFile and privateFile are where an agent's keys live.
func publicFile(root, agent string) string { return filepath.Join(root, KeysDir, agent+".pub") }

func privateFile(root, agent string) string {
	if agent == System { // parley itself has no inbox
		return filepath.Join(root, ".parley", agent+".key")
	}
	return filepath.Join(root, agent, "state", agent+".key")
}

// NewKey makes an agent's key pair: the public key in ROOT/keys/NAME.pub,
// the private key in ROOT/NAME/state/NAME.key, readable by its owner only.
// An agent that has a key keeps it (false).
func (r *Root) NewKey(agent string) (bool, error) {
	if _, err := os.Stat(privateFile(r.Dir, agent)); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Join(r.Dir, KeysDir), 0o755); err != nil {
		return false, fmt.Errorf("key for %s: %w", agent, err)
	}
	return true, r.writeKey(agent)
}

func (r *Root) writeKey(agent string) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("key for %s: %w", agent, err)
	}
	if err := os.MkdirAll(filepath.Dir(privateFile(r.Dir, agent)), 0o755); err != nil {
		return fmt.Errorf("key for %s: %w", agent, err)
	}
	if err := writeFileSync(privateFile(r.Dir, agent)+".new", []byte(base64.StdEncoding.EncodeToString(priv.Seed())+"\n")); err != nil {
		return fmt.Errorf("key for %s: %w", agent, err)
	}
	if err := os.Chmod(privateFile(r.Dir, agent)+".new", 0o600); err != nil {
		return fmt.Errorf("key for %s: %w", agent, err)
	}
	line := fmt.Sprintf("ed25519 %s %s\n", base64.StdEncoding.EncodeToString(pub), agent)
	if err := writeFileSync(publicFile(r.Dir, agent)+".new", []byte(line)); err != nil {
		return fmt.Errorf("key for %s: %w", agent, err)
	}
	if err := os.Rename(publicFile(r.Dir, agent)+".new", publicFile(r.Dir, agent)); err != nil {
		return fmt.Errorf("key for %s: %w", agent, err)
	}
	return os.Rename(privateFile(r.Dir, agent)+".new", privateFile(r.Dir, agent))
}

// RotateKey retires an agent's key (kept as keys/NAME.FINGERPRINT.pub, with
// the time it was retired, so that what it signed before still verifies)
// and makes a new one.
func (r *Root) RotateKey(agent string) (old, fresh string, err error) {
	pub, err := readPublic(publicFile(r.Dir, agent))
	if err != nil {
		return "", "", fmt.Errorf("rotate key of %s: %w", agent, err)
	}
	old = Fingerprint(pub)
	retired := filepath.Join(r.Dir, KeysDir, agent+"."+old+".pub")
	line := fmt.Sprintf("ed25519 %s %s retired %s\n", base64.StdEncoding.EncodeToString(pub), agent, r.Now().UTC().Format(time.RFC3339Nano))
	if err := writeFileSync(retired+".new", []byte(line)); err != nil {
		return "", "", fmt.Errorf("rotate key of %s: %w", agent, err)
	}
	if err := os.Rename(retired+".new", retired); err != nil {
		return "", "", fmt.Errorf("rotate key of %s: %w", agent, err)
	}
	if err := r.writeKey(agent); err != nil {
		return "", "", err
	}
	npub, err := readPublic(publicFile(r.Dir, agent))
	if err != nil {
		return "", "", err
	}
	return old, Fingerprint(npub), nil
}

// HasKey reports whether agent's private key is in the root: whether this
// machine can run it.
func (r *Root) HasKey(agent string) bool {
	_, err := os.Stat(privateFile(r.Dir, agent))
	return err == nil
}

// PrivateKey reads an agent's private key.
func (r *Root) PrivateKey(agent string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(privateFile(r.Dir, agent))
	if err != nil {
		return nil, fmt.Errorf("private key of %s: %w", agent, err)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("private key of %s: %s is not a key", agent, privateFile(r.Dir, agent))
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

func readPublic(path string) (ed25519.PublicKey, error) {
	pub, _, err := readKeyFile(path)
	return pub, err
}

// readKeyFile reads "ed25519 BASE64 NAME [retired TIME]".
func readKeyFile(path string) (ed25519.PublicKey, time.Time, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	f := strings.Fields(string(data))
	if len(f) < 3 || f[0] != "ed25519" {
		return nil, time.Time{}, fmt.Errorf("%s: not an ed25519 public key line", path)
	}
	pub, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, time.Time{}, fmt.Errorf("%s: not an ed25519 public key", path)
	}
	var retired time.Time
	if len(f) >= 5 && f[3] == "retired" {
		if retired, err = time.Parse(time.RFC3339Nano, f[4]); err != nil {
			return nil, time.Time{}, fmt.Errorf("%s: retired %q is not a time", path, f[4])
		}
	}
	return ed25519.PublicKey(pub), retired, nil
}

// Keys reads every public key under ROOT/keys/.
func (r *Root) Keys() (Keyring, error) {
	files, err := filepath.Glob(filepath.Join(r.Dir, KeysDir, "*.pub"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	ring := Keyring{}
	for _, f := range files {
		agent, _, _ := strings.Cut(filepath.Base(f), ".")
		pub, retired, err := readKeyFile(f)
		if err != nil {
			return nil, err
		}
		ring[agent] = append(ring[agent], Key{Agent: agent, Public: pub, Retired: retired})
	}
	return ring, nil
}

// VerifyDelivered checks the message file of every delivery the ledger
// records: it must still be in its inbox (new/, cur/ or rejected/), carry
// the Message-ID the ledger names, and be signed by its sender. It returns
// how many it checked, and a *VerifyError naming the ledger line of the
// first that is missing, forged or unsigned. On a transport that keeps
// every message elsewhere (a Keeper), the message is looked for there.
func (r *Root) VerifyDelivered(entries []Entry) (int, error) {
	ring, err := r.Keys()
	if err != nil {
		return 0, err
	}
	var kept map[string][]byte
	if k, ok := r.Transport.(Keeper); ok {
		if kept, err = k.Kept(); err != nil {
			return 0, err
		}
	}
	n := 0
	for _, e := range entries {
		if e.Event != EventDelivered || e.File == "" {
			continue
		}
		fail := func(kind, msg string) (int, error) {
			return n, &VerifyError{Line: int(e.Seq), Seq: e.Seq, Kind: kind, Msg: msg,
				Hint: "the message files are the evidence: restore them from git, or see parley why " + cmdline.Quote(e.MsgID)}
		}
		path, data := e.File, kept[e.MsgID]
		if kept == nil {
			if path = r.findMessage(e.File); path == "" {
				return fail("missing", fmt.Sprintf("the message %s (%s) is in no folder of %s", e.MsgID, e.File, filepath.Dir(filepath.Dir(e.File))))
			}
			// Read as any inbox file is: a message replaced by a link to
			// /dev/zero must not be read for ever. The bound is generous,
			// for messages delivered under a higher limit than today's.
			if data, err = ReadMessageFile(path, max(r.maxSize(), 64<<20)); err != nil {
				if errors.Is(err, ErrStranger) {
					return fail("forged", fmt.Sprintf("%s is %v", path, err))
				}
				return n, err
			}
		} else if data == nil {
			return fail("missing", fmt.Sprintf("the message %s (%s) is not on the transport", e.MsgID, e.File))
		}
		m, err := Parse(data)
		if err != nil {
			return fail("forged", fmt.Sprintf("%s no longer parses: %v", path, err))
		}
		if m.ID != e.MsgID {
			return fail("forged", fmt.Sprintf("%s holds %s, but the ledger recorded %s", path, m.ID, e.MsgID))
		}
		if err := ring.Verify(m); err != nil {
			return fail("forged", fmt.Sprintf("%s: %v", path, err))
		}
		n++
	}
	return n, nil
}

// findMessage finds a delivered file wherever it went in its inbox: still
// in new/, claimed into cur/ (with parley's mark and flags), or moved to
// rejected/.
func (r *Root) findMessage(file string) string {
	agent, base := filepath.Dir(filepath.Dir(file)), filepath.Base(file)
	inbox := r.Inbox(agent)
	if p := inbox.Path("rejected", Uniq(base)); exists(p) {
		return p
	}
	return inbox.Locate(base)
}
