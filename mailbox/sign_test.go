package mailbox

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func signedRoot(t testing.TB, agents ...string) *Root {
	t.Helper()
	r := newRoot(t, agents...)
	for _, a := range agents {
		if made, err := r.NewKey(a); err != nil || !made {
			t.Fatalf("NewKey(%s) = %v, %v", a, made, err)
		}
	}
	return r
}

func signedBy(t testing.TB, r *Root, m *Message, agent string) *Message {
	t.Helper()
	priv, err := r.PrivateKey(agent)
	if err != nil {
		t.Fatal(err)
	}
	Sign(m, priv)
	return m
}

// TestSignatures: each way a message can be forged or changed is refused
// with its reason.
func TestSignatures(t *testing.T) {
	r := signedRoot(t, "finance", "vendor-b", "procurement")
	ring, err := r.Keys()
	if err != nil {
		t.Fatal(err)
	}
	approval := func() *Message {
		m := testMessage("finance", "procurement", Approved)
		m.Amount = MustMoney("2400.00 USD")
		return m
	}
	tests := []struct {
		name string
		m    func() *Message
		want error
	}{
		{"signed by its sender", func() *Message { return signedBy(t, r, approval(), "finance") }, nil},
		{"unsigned", approval, ErrUnsigned},
		{"forged From: signed by another agent", func() *Message {
			m := approval()
			signedBy(t, r, m, "vendor-b") // vendor-b signs a message that says it is from finance
			return m
		}, ErrUnknownKey},
		{"amount changed after signing", func() *Message {
			m := signedBy(t, r, approval(), "finance")
			m.Amount = MustMoney("9400.00 USD")
			return m
		}, ErrBadSignature},
		{"one byte of the body changed", func() *Message {
			m := signedBy(t, r, approval(), "finance")
			m.Body = "ok\n"
			return m
		}, ErrBadSignature},
		{"signature stripped and garbled", func() *Message {
			m := signedBy(t, r, approval(), "finance")
			m.Extra[len(m.Extra)-1].Value = "ed25519 0011 !!!"
			return m
		}, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ring.Verify(tt.m())
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestSignedFormIgnoresMailTools: CRLF line endings and folded headers, as
// mail tools may write them, do not break a signature; the signed message
// read back from its file verifies.
func TestSignedFormIgnoresMailTools(t *testing.T) {
	r := signedRoot(t, "finance")
	ring, _ := r.Keys()
	m := testMessage("finance", "procurement", Approved)
	m.Amount = MustMoney("2400.00 USD")
	m.Subject = "APPROVED: a subject long enough to be folded by a mail tool that likes short lines"
	m.Body = "line one\nline two\n"
	signedBy(t, r, m, "finance")
	data := m.Marshal()
	mangled := bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
	mangled = bytes.Replace(mangled, []byte("to be folded by"), []byte("to be folded\r\n by"), 1)
	back, err := Parse(mangled)
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Verify(back); err != nil {
		t.Errorf("after CRLF and folding: %v", err)
	}
	changed, _ := Parse(bytes.Replace(data, []byte("line two"), []byte("line 2"), 1))
	if err := ring.Verify(changed); !errors.Is(err, ErrBadSignature) {
		t.Errorf("after a change of text: %v, want ErrBadSignature", err)
	}
}

// TestRotatedKey: after a rotation, what the old key signed before still
// verifies, and what it signs after is refused.
func TestRotatedKey(t *testing.T) {
	r := signedRoot(t, "finance")
	clock := r.Now() // the root's clock, which also dates the rotation
	before := testMessage("finance", "procurement", Notify)
	before.Date = clock.Add(-time.Hour)
	signedBy(t, r, before, "finance")
	oldKey, _ := r.PrivateKey("finance")
	old, fresh, err := r.RotateKey("finance")
	if err != nil || old == fresh {
		t.Fatalf("RotateKey = %s, %s, %v", old, fresh, err)
	}
	ring, err := r.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Verify(before); err != nil {
		t.Errorf("a message signed before the rotation: %v", err)
	}
	after := testMessage("finance", "procurement", Notify)
	after.Date = clock.Add(time.Minute)
	Sign(after, oldKey)
	if err := ring.Verify(after); !errors.Is(err, ErrRetiredKey) {
		t.Errorf("signed with the retired key after the rotation: %v, want ErrRetiredKey", err)
	}
	now := testMessage("finance", "procurement", Notify)
	now.Date = clock.Add(time.Minute)
	signedBy(t, r, now, "finance")
	if err := ring.Verify(now); err != nil {
		t.Errorf("signed with the new key: %v", err)
	}
}

func TestPrivateKeyIsTheOwners(t *testing.T) {
	r := signedRoot(t, "finance")
	st, err := os.Stat(privateFile(r.Dir, "finance"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", st.Mode().Perm())
	}
	if made, err := r.NewKey("finance"); made || err != nil {
		t.Errorf("NewKey again = %v, %v: an agent keeps its key", made, err)
	}
}

// FuzzVerifySignature: no Signature header value makes Verify panic or
// accept a message its sender did not sign.
func FuzzVerifySignature(f *testing.F) {
	r := signedRoot(f, "finance")
	ring, _ := r.Keys()
	m := testMessage("finance", "procurement", Notify)
	signedBy(f, r, m, "finance")
	good, _ := m.Get(SignatureHeader)
	f.Add(good)
	f.Add("ed25519 00 AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, value string) {
		c := *m
		c.Extra = []Header{{Name: SignatureHeader, Value: value}}
		c.Body = "changed\n" // whatever the header says, this text was never signed
		if err := ring.Verify(&c); err == nil {
			t.Fatalf("accepted an unsigned change with Signature %q", value)
		}
		if strings.Count(value, "\n") == 0 {
			_ = ring.Verify(&c)
		}
	})
}

func BenchmarkSignMessage(b *testing.B) {
	r := signedRoot(b, "finance")
	priv, _ := r.PrivateKey("finance")
	m := testMessage("finance", "procurement", Counter)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Sign(m, priv)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signs/s")
}

func BenchmarkVerifySignature(b *testing.B) {
	r := signedRoot(b, "finance")
	ring, _ := r.Keys()
	m := testMessage("finance", "procurement", Counter)
	signedBy(b, r, m, "finance")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := ring.Verify(m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
}

// TestVerifyDelivered: every delivery in the ledger has its file, signed;
// a file changed afterwards, or gone, is named by its ledger line.
func TestVerifyDelivered(t *testing.T) {
	r := signedRoot(t, "procurement", "vendor-b")
	m := testMessage("procurement", "vendor-b", Request)
	where, err := r.Deliver("procurement", m)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(where)
	c, err := r.Claim("vendor-b", name)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(c, FlagDone, ""); err != nil {
		t.Fatal(err)
	}
	es := ledgerEntries(t, r)
	if n, err := r.VerifyDelivered(es); err != nil || n != 1 {
		t.Fatalf("VerifyDelivered = %d, %v; want 1 checked", n, err)
	}
	done := r.Inbox("vendor-b").Path("cur", name+",parley=done:2,S")
	data, _ := os.ReadFile(done)
	os.WriteFile(done, bytes.Replace(data, []byte("Quantity: 500"), []byte("Quantity: 900"), 1), 0o644)
	var ve *VerifyError
	if _, err := r.VerifyDelivered(es); !errors.As(err, &ve) || ve.Kind != "forged" || ve.Seq != 1 {
		t.Errorf("after a change: %v, want forged at seq 1", err)
	}
	os.Remove(done)
	if _, err := r.VerifyDelivered(es); !errors.As(err, &ve) || ve.Kind != "missing" {
		t.Errorf("after a removal: %v, want missing", err)
	}
}

// TestDeliverSignsWithTheKeyInUse: after a rotation, a long-running root
// signs with the new key, not the one it read before.
func TestDeliverSignsWithTheKeyInUse(t *testing.T) {
	r := signedRoot(t, "finance", "procurement")
	first := testMessage("finance", "procurement", Notify)
	if _, err := r.Deliver("finance", first); err != nil {
		t.Fatal(err)
	}
	other, err := OpenRoot(r.Dir, r.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, _, err := other.RotateKey("finance"); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(privateFile(r.Dir, "finance"), time.Now(), time.Now().Add(time.Second)) // a new stamp, whatever the clock's grain
	second := testMessage("finance", "procurement", Notify)
	second.Date = r.Now().Add(time.Minute)
	if _, err := r.Deliver("finance", second); err != nil {
		t.Fatal(err)
	}
	ring, _ := r.Keys()
	if err := ring.Verify(second); err != nil {
		t.Errorf("a message sent after the rotation: %v", err)
	}
}

func TestConflictingAnchorsAreRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), AnchorFile)
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	os.WriteFile(path, []byte("5 "+a+" 2026-11-26T10:00:00Z\n5 "+b+" 2026-11-26T11:00:00Z\n"), 0o644)
	if _, err := ReadAnchors(path); err == nil || !strings.Contains(err.Error(), "anchored twice") {
		t.Errorf("ReadAnchors = %v, want the conflict named", err)
	}
}
