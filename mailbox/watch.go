package mailbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
)

// WatchOptions tune a Watcher; the zero value is right for a local disk.
type WatchOptions struct {
	// Rescan is the slow timer on which the folder is read again in full,
	// to find anything the events missed. Default 5s.
	Rescan time.Duration
	// Poll reads the folder every PollEvery instead of using fsnotify. It is
	// chosen by itself on a network file system, where inotify sees nothing.
	Poll      bool
	PollEvery time.Duration // default 250ms
	// Keep, when set, says which names to report (Ignored ones never are).
	Keep func(name string) bool
}

// Watcher reports the names of the files that appear in one folder. Events
// are hints and the folder is the truth (RELIABILITY.md 5-7): the watch is
// added first, then the folder is scanned, and it is scanned again after an
// event overflow and on a slow timer, so a file that arrived while nobody
// watched is still reported. A name may be reported more than once; the
// consumer's claim decides.
type Watcher struct {
	dir     string
	fsw     *fsnotify.Watcher
	every   time.Duration
	warning string
	keep    func(string) bool

	mu      sync.Mutex
	pending map[string]struct{}
	ready   chan struct{} // holds one token while pending is not empty
	errs    []error

	stop chan struct{}
	wg   sync.WaitGroup
}

// Watch starts watching dir.
func Watch(dir string, opt WatchOptions) (*Watcher, error) {
	if opt.Rescan <= 0 {
		opt.Rescan = 5 * time.Second
	}
	if opt.PollEvery <= 0 {
		opt.PollEvery = 250 * time.Millisecond
	}
	w := &Watcher{dir: dir, pending: map[string]struct{}{}, ready: make(chan struct{}, 1), stop: make(chan struct{}), every: opt.Rescan, keep: opt.Keep}
	if kind := networkFS(dir); kind != "" && !opt.Poll {
		opt.Poll = true
		w.warning = fmt.Sprintf("%s is on %s, where file events are not seen: polling every %v", dir, kind, opt.PollEvery)
	}
	if opt.Poll {
		w.every = opt.PollEvery
	} else {
		fsw, err := fsnotify.NewWatcher()
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", dir, err)
		}
		if err := fsw.Add(dir); err != nil {
			fsw.Close()
			return nil, fmt.Errorf("watch %s: %w", dir, err)
		}
		w.fsw = fsw
	}
	if err := w.scan(); err != nil {
		w.Close()
		return nil, err
	}
	w.wg.Add(1)
	go w.loop()
	return w, nil
}

// Warning says why the watcher polls, or is empty.
func (w *Watcher) Warning() string { return w.warning }

// Polling reports whether the watcher polls rather than using fsnotify.
func (w *Watcher) Polling() bool { return w.fsw == nil }

func (w *Watcher) loop() {
	defer w.wg.Done()
	tick := time.NewTicker(w.every)
	defer tick.Stop()
	var events chan fsnotify.Event
	var errs chan error
	if w.fsw != nil {
		events, errs = w.fsw.Events, w.fsw.Errors
	}
	// One select drains events and errors both, and does no slow work: a
	// stalled reader is what makes the kernel queue overflow.
	for {
		select {
		case <-w.stop:
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) {
				w.add(filepath.Base(ev.Name))
			}
		case err, ok := <-errs:
			if !ok {
				return
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				w.fail(fmt.Errorf("watch %s: %w", w.dir, err))
			}
			w.rescan()
		case <-tick.C:
			w.rescan()
		}
	}
}

func (w *Watcher) rescan() {
	if err := w.scan(); err != nil {
		w.fail(err)
	}
}

func (w *Watcher) fail(err error) {
	w.mu.Lock()
	w.errs = append(w.errs, err)
	w.mu.Unlock()
	w.signal()
}

// scan reports every name in the folder.
func (w *Watcher) scan() error {
	f, err := os.Open(w.dir)
	if err != nil {
		return fmt.Errorf("scan %s: %w", w.dir, err)
	}
	defer f.Close()
	for {
		names, err := f.Readdirnames(4096)
		w.mu.Lock()
		for _, n := range names {
			if w.wanted(n) {
				w.pending[n] = struct{}{}
			}
		}
		w.mu.Unlock()
		if err != nil || len(names) == 0 {
			break
		}
	}
	w.signal()
	return nil
}

func (w *Watcher) wanted(name string) bool {
	return !Ignored(name) && (w.keep == nil || w.keep(name))
}

func (w *Watcher) add(name string) {
	if !w.wanted(name) {
		return
	}
	w.mu.Lock()
	w.pending[name] = struct{}{}
	w.mu.Unlock()
	w.signal()
}

func (w *Watcher) signal() {
	w.mu.Lock()
	has := len(w.pending) > 0 || len(w.errs) > 0
	w.mu.Unlock()
	if has {
		select {
		case w.ready <- struct{}{}:
		default:
		}
	}
}

// Next waits for names to report and returns them all, in name order (for
// Maildir names, arrival order). An error from the watch itself is returned
// once, after which watching goes on.
func (w *Watcher) Next(ctx context.Context) ([]string, error) {
	for {
		if names, ok, err := w.take(); ok {
			return names, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-w.stop:
			return nil, errors.New("watcher closed")
		case <-w.ready:
		}
	}
}

// take returns what Next would, without waiting: ok is false when there
// is nothing to report yet (then w.ready is where to wait).
func (w *Watcher) take() (names []string, ok bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errs) > 0 {
		err = w.errs[0]
		w.errs = w.errs[1:]
		return nil, true, err
	}
	if len(w.pending) == 0 {
		return nil, false, nil
	}
	names = make([]string, 0, len(w.pending))
	for n := range w.pending {
		names = append(names, n)
	}
	clear(w.pending)
	sort.Strings(names)
	return names, true, nil
}

// Each calls fn with every name reported, in order, until ctx ends (which
// is not an error) or the watch fails.
func (w *Watcher) Each(ctx context.Context, fn func(name string)) error {
	for {
		names, err := w.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		for _, n := range names {
			fn(n)
		}
	}
}

// Again reports name again after d: for a file that was not ready yet.
func (w *Watcher) Again(name string, d time.Duration) {
	time.AfterFunc(d, func() {
		select {
		case <-w.stop:
		default:
			w.add(name)
		}
	})
}

// Close stops the watcher and waits for its goroutines.
func (w *Watcher) Close() error {
	select {
	case <-w.stop:
		return nil
	default:
	}
	close(w.stop)
	var err error
	if w.fsw != nil {
		err = w.fsw.Close()
	}
	w.wg.Wait()
	return err
}

// networkFS names the network or FUSE file system dir is on, or is empty
// for a local one (statfs(2) magic numbers).
func networkFS(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return ""
	}
	switch uint32(st.Type) {
	case unix.NFS_SUPER_MAGIC:
		return "NFS"
	case unix.SMB_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC:
		return "SMB"
	case unix.FUSE_SUPER_MAGIC:
		return "FUSE"
	case 0x6B414653: // AFS
		return "AFS"
	}
	return ""
}
