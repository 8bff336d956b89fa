package mailbox

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// TestDateOnly: dateOnly writes what time.Format(time.DateOnly) does, in
// the time's own location.
func TestDateOnly(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*3600)
	}
	locs := []*time.Location{time.UTC, ny, time.FixedZone("x", 13*3600+45*60), time.FixedZone("y", -11*3600)}
	times := []time.Time{{}, time.Date(2026, 12, 3, 23, 59, 59, 0, time.UTC), time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(999, 10, 9, 0, 0, 0, 0, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		times = append(times, time.Unix(rng.Int64N(400_000_000_000)-200_000_000_000, 0))
	}
	for _, tm := range times {
		for _, l := range locs {
			x := tm.In(l)
			if got, want := dateOnly(x), x.Format(time.DateOnly); got != want {
				t.Fatalf("dateOnly(%v) = %q, Format says %q", x, got, want)
			}
		}
	}
}

// TestTimes: a price times a quantity in int64 is the decimals' product,
// the same number at the same exponent.
func TestTimes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	amounts := []decimal.Decimal{decimal.Zero, decimal.New(865, -2), decimal.New(-865, -2), decimal.New(2_999_999_999, -2), decimal.New(3_000_000_000, -2),
		decimal.New(-2_999_999_999, 0), decimal.New(1, 5), decimal.RequireFromString("123456789012345678901234567890.5"), decimal.RequireFromString("0.000000000000000000000001")}
	qs := []int64{0, 1, -1, 650, 2_999_999_999, 3_000_000_000, -2_999_999_999, 1 << 62, -1 << 63}
	for range 20000 {
		amounts = append(amounts, decimal.New(rng.Int64N(8_000_000_000)-4_000_000_000, -int32(rng.IntN(12))+2))
		qs = append(qs, rng.Int64N(8_000_000_000)-4_000_000_000)
	}
	for i, a := range amounts {
		for j, q := range qs {
			if i > 10 && j > 10 && i != j {
				continue
			}
			got, want := Money{Amount: a, Currency: "USD"}.Times(q).Amount, a.Mul(decimal.NewFromInt(q))
			if !got.Equal(want) || got.Exponent() != want.Exponent() || got.String() != want.String() {
				t.Fatalf("%s × %d = %s (exponent %d), Mul says %s (exponent %d)", a, q, got, got.Exponent(), want, want.Exponent())
			}
		}
	}
}

// TestMoneyStringFast: Money.String, written in one buffer, is the
// amount's Decimal, a space and the code — for amounts decimalFast takes
// and ones it leaves to StringFixed.
func TestMoneyStringFast(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 1))
	values := []string{"0", "0.00", "4.8", "4.80", "4.805", "-4.805", "1200", "1200.000", "0.001", "-0.01", "0.0000001", "-0.0000001",
		"123456789012.34", "999999999999999", "9999999999999999", "1e3", "-7", "10.10", "5.000000000000000001", "0.000000000000000001"}
	for range 5000 {
		values = append(values, decimal.New(rng.Int64N(2_000_000_000)-1_000_000_000, -int32(rng.IntN(20))).String())
	}
	for _, v := range values {
		d := decimal.RequireFromString(v)
		for _, cur := range []string{"USD", "JPY", "BHD", "XYZ", ""} {
			m := Money{Amount: d, Currency: cur}
			want := ""
			if !m.IsZero() {
				want = m.Decimal() + " " + m.Currency
			}
			if got := m.String(); got != want {
				t.Fatalf("Money{%s, %q}.String() = %q, want %q", v, cur, got, want)
			}
			places := int32(2)
			if p, ok := minorUnits[cur]; ok {
				places = p
			}
			if exp := -d.Normalize().Exponent(); exp > places {
				places = exp
			}
			if got := m.Decimal(); got != d.StringFixed(places) {
				t.Fatalf("Money{%s, %q}.Decimal() = %q, StringFixed says %q", v, cur, got, d.StringFixed(places))
			}
		}
	}
}

// TestAppendTo: AppendTo appends what String writes.
func TestAppendTo(t *testing.T) {
	for _, m := range []Money{{}, {Amount: decimal.New(865, -2), Currency: "USD"}, {Amount: decimal.RequireFromString("5.000000000000000001"), Currency: "EUR"}} {
		if got, want := string(m.AppendTo([]byte("x:"))), "x:"+m.String(); got != want {
			t.Errorf("AppendTo = %q, want %q", got, want)
		}
	}
}

// TestTotalDecimal: TotalDecimal and TotalSign say what m.Total() does,
// its text and currency, its sign.
func TestTotalDecimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 3))
	amounts := []decimal.Decimal{decimal.Zero, decimal.New(865, -2), decimal.New(-865, -2), decimal.New(2_999_999_999, -2), decimal.New(3_000_000_000, -2),
		decimal.New(1, 5), decimal.RequireFromString("123456789012345678901234567890.5"), decimal.RequireFromString("0.000000000000000000000001"),
		decimal.New(999_999_999, -6), decimal.New(5, -19)}
	for range 20000 {
		amounts = append(amounts, decimal.New(rng.Int64N(8_000_000_000)-4_000_000_000, -int32(rng.IntN(22))+2))
	}
	qs := []int64{0, 1, -1, 650, 2_999_999_999, 3_000_000_000, 1 << 62, -1 << 63}
	curs := []string{"", "USD", "JPY", "BHD"}
	for i, a := range amounts {
		for j, q := range qs {
			if i > 10 && j != i%len(qs) {
				continue
			}
			for k, cur := range curs {
				for _, m := range []*Message{
					{UnitPrice: Money{Amount: a, Currency: cur}, Quantity: q},
					{Amount: Money{Amount: a, Currency: cur}, UnitPrice: Money{Amount: decimal.New(1, 0), Currency: curs[(k+1)%len(curs)]}, Quantity: q},
					{},
				} {
					total := m.Total()
					wantText, wantCur := "", ""
					if !total.IsZero() {
						wantText, wantCur = total.Decimal(), total.Currency
					}
					if text, cur := m.TotalDecimal(); text != wantText || cur != wantCur {
						t.Fatalf("%+v: TotalDecimal = %q %q, Total says %q %q", m, text, cur, wantText, wantCur)
					}
					if cur, sign := m.TotalSign(); cur != total.Currency || sign != total.Amount.Sign() {
						t.Fatalf("%+v: TotalSign = %q %d, Total says %q %d", m, cur, sign, total.Currency, total.Amount.Sign())
					}
				}
			}
		}
	}
}
