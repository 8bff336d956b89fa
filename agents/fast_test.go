package agents

import (
	"fmt"
	"testing"

	"github.com/parley-dev/parley/mailbox"
	"github.com/shopspring/decimal"
)

// TestAtEach: the joined subject of an offer or a quote is the one
// fmt.Sprintf writes.
func TestAtEach(t *testing.T) {
	prices := []mailbox.Money{{}, {Amount: decimal.RequireFromString("8.65"), Currency: "USD"}, {Amount: decimal.New(5785, -3), Currency: "EUR"},
		{Amount: decimal.New(12, 0), Currency: "JPY"}, {Amount: decimal.New(-1, -2), Currency: "USD"}, {Amount: decimal.New(1200, -6), Currency: "XYZ"}}
	for _, head := range []string{"QUOTE", "COUNTER", "BEST AND FINAL", ""} {
		for _, q := range []int64{0, 1, 650, -3, 1 << 62} {
			for _, item := range []string{"widget", "", "a b", "%d"} {
				for _, p := range prices {
					if got, want := atEach(head, q, item, p), fmt.Sprintf("%s: %d %s at %s each", head, q, item, p); got != want {
						t.Errorf("atEach = %q, Sprintf %q", got, want)
					}
				}
			}
		}
	}
}
