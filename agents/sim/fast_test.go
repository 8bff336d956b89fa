package sim

import (
	"math/rand/v2"
	"testing"

	"github.com/parley-dev/parley/mailbox"
	"github.com/shopspring/decimal"
)

// TestTotalMicro: totalMicro is micro(m.Total().Amount).
func TestTotalMicro(t *testing.T) {
	prices := []string{"0", "0.01", "8.65", "-8.65", "1", "12.345678", "0.000001", "1.2345678", "999999999999", "1000000000000",
		"1000000000001", "123456.789012", "1E3", "1E7", "5.000000", "0.10", "-0.000001"}
	qtys := []int64{0, 1, -3, 2, 650, 1_000_000, 999_999_999, 1 << 40, 1 << 62}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		prices = append(prices, decimal.New(rng.Int64N(2_000_000_000_000)-1_000_000_000_000, -int32(rng.IntN(9))).String())
		qtys = append(qtys, rng.Int64N(10_000_000))
	}
	for i, p := range prices {
		for j, q := range qtys {
			if i > 20 && j > 20 && i != j {
				continue
			}
			u := decimal.RequireFromString(p)
			m := &mailbox.Message{UnitPrice: mailbox.Money{Amount: u, Currency: "USD"}, Quantity: q}
			if got, want := totalMicro(m), micro(m.Total().Amount); got != want {
				t.Fatalf("totalMicro(%s × %d) = %d, micro of the total %d", p, q, got, want)
			}
			m.Amount = mailbox.Money{Amount: u.Add(decimal.New(1, -2)), Currency: "USD"}
			if got, want := totalMicro(m), micro(m.Total().Amount); got != want {
				t.Fatalf("totalMicro(amount %s) = %d, micro of the total %d", m.Amount.Amount, got, want)
			}
		}
	}
}
