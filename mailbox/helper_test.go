package mailbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/parley-dev/parley/internal/proctest"
)

// Tests that cross processes re-execute the test binary as a helper.
func TestMain(m *testing.M) {
	proctest.Main(m, map[string]func(args []string) error{
		"append": func(args []string) error { // PATH COUNT AGENT
			n, _ := strconv.Atoi(args[1])
			l, err := OpenLedger(args[0], nil, nil)
			if err != nil {
				return err
			}
			defer l.Close()
			proctest.WaitGo()
			for i := 0; i < n; i++ {
				if _, err := l.Append(Entry{Agent: args[2], Event: "test", Reason: strconv.Itoa(i)}); err != nil {
					return err
				}
			}
			return nil
		},
		"claim": func(args []string) error { // ROOTDIR AGENT: claim until new/ stays empty, print the ids won
			r, err := OpenRoot(args[0], nil)
			if err != nil {
				return err
			}
			defer r.Close()
			proctest.WaitGo()
			out := bufio.NewWriter(os.Stdout)
			defer out.Flush()
			return claimAll(r, args[1], func(c *Claimed) { fmt.Fprintln(out, c.Message.ID) })
		},
		"floor-append": func(args []string) error { // PATH COUNT: the bare system calls of an append
			n, _ := strconv.Atoi(args[1])
			f, err := os.OpenFile(args[0], os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				return err
			}
			defer f.Close()
			proctest.WaitGo()
			floorAppend(nil, f, n)
			return nil
		},
	})
}

// claimAll claims every message waiting in agent's new/ and finishes it.
func claimAll(r *Root, agent string, won func(*Claimed)) error {
	for {
		names, err := r.Inbox(agent).Pending()
		if err != nil {
			return err
		}
		if len(names) == 0 {
			return nil
		}
		for _, n := range names {
			c, err := r.Claim(agent, n)
			if errors.Is(err, ErrClaimed) {
				continue
			}
			if err != nil {
				return err
			}
			won(c)
			if err := r.Finish(c, FlagDone, ""); err != nil {
				return err
			}
		}
	}
}

func countEvents(r *Root, event string) int {
	f, err := os.Open(r.Dir + "/" + LedgerFile)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	_ = ReadEntries(f, func(_ int, e Entry) error {
		if e.Event == event {
			n++
		}
		return nil
	})
	return n
}
