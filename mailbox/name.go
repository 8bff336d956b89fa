package mailbox

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

var (
	counter  atomic.Uint64
	hostname = func() string {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return "localhost"
		}
		// Maildir forbids '/' and ':' in a name; its spec escapes them so.
		h = strings.ReplaceAll(h, "/", `\057`)
		return strings.ReplaceAll(h, ":", `\072`)
	}()
)

// uniq is the part of a Maildir name and of a Message-ID that makes it
// unique on this host: seconds, microseconds, pid and a per-process counter
// (qmail's recipe), plus randomness so that a pid reused after a reboot
// within one second cannot collide.
func uniq(now time.Time) string {
	var r [4]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails on Linux (Go 1.24+)
	return fmt.Sprintf("%d.M%06dP%dQ%dR%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(), counter.Add(1), hex.EncodeToString(r[:]))
}

// NewFileName returns a unique Maildir file name, such as
// 1764151200.M123456P4242Q7R1a2b3c4d.host. Nobody parses it for meaning: the
// message id lives inside the file.
func NewFileName(now time.Time) string { return uniq(now) + "." + hostname }

// NewMessageID returns a unique Message-ID for a message sent by agent.
func NewMessageID(now time.Time, agent string) string {
	return "<" + uniq(now) + "." + agent + "@parley>"
}

// NewThreadID returns a fresh thread id that names what the deal is about.
func NewThreadID(now time.Time, about string) string {
	slug := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, about)
	slug = strings.Trim(slug, "-")
	if len(slug) > 40 {
		slug = strings.TrimRight(slug[:40], "-")
	}
	if slug == "" {
		slug = "thread"
	}
	var r [3]byte
	_, _ = rand.Read(r[:])
	return slug + "-" + now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(r[:])
}
