package agents

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

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

// TestOfferMicros: parley's offer worked out in millionths is the offer
// worked out in decimals, for random auctions: vendors' quotes of two to
// seven decimals, offers made and raised, ceilings, budgets and late
// penalties — and the probe the same.
func TestOfferMicros(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 5))
	price := func() decimal.Decimal {
		switch rng.IntN(10) {
		case 0:
			return decimal.New(rng.Int64N(20_000_000)+1, -int32(3+rng.IntN(5))) // three to seven decimals
		case 1:
			return decimal.New(rng.Int64N(300)+1, 0)
		case 2:
			return decimal.New(rng.Int64N(3)+1, -2) // a cent or three
		}
		return decimal.New(rng.Int64N(20_000)+1, -2)
	}
	money := func(d decimal.Decimal) mailbox.Money { return mailbox.Money{Amount: d, Currency: "USD"} }
	by := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	fast, all := 0, 0
	defer func() {
		if fast < all/2 {
			t.Errorf("only %d of %d offers worked out in millionths", fast, all)
		}
	}()
	for i := range 30_000 {
		r := &Procurement{Name: "procurement", Rounds: 12}
		if rng.IntN(3) > 0 {
			r.Ceiling = money(price())
		}
		if rng.IntN(2) == 0 {
			r.Limit = money(price().Mul(decimal.NewFromInt(rng.Int64N(900) + 1)))
		}
		if rng.IntN(4) == 0 {
			r.LatePenalty = money(decimal.New(rng.Int64N(100), -2))
		}
		d := &Deal{Thread: fmt.Sprintf("t-%d", i), Quantity: rng.Int64N(900) + 1, DeliverBy: by, Quotes: map[string]*Offer{}}
		for j := range rng.IntN(5) + 1 {
			o := &Offer{DeliverBy: by.AddDate(0, 0, rng.IntN(3)-1)}
			q := price()
			for range rng.IntN(6) + 1 {
				o.Quoted = append(o.Quoted, q)
				if rng.IntN(3) > 0 {
					q = q.Sub(decimal.New(rng.Int64N(50), -2))
				}
			}
			o.UnitPrice = money(o.Quoted[len(o.Quoted)-1])
			if rng.IntN(5) == 0 {
				o.UnitPrice = money(price())
			}
			if rng.IntN(3) > 0 {
				o.Offered = money(o.UnitPrice.Amount.Mul(decimal.New(int64(70+rng.IntN(30)), -2)).Round(int32(rng.IntN(4))))
				if rng.IntN(2) == 0 {
					o.Raised = decimal.New(rng.Int64N(40), -2)
					if rng.IntN(2) == 0 && len(o.Quoted) >= 2 {
						o.Raised = o.Quoted[len(o.Quoted)-2].Sub(o.Quoted[len(o.Quoted)-1])
					}
				}
				o.Probes = rng.IntN(3)
			}
			o.Rounds = rng.IntN(8)
			d.Quotes[fmt.Sprintf("vendor-%c", 'a'+j)] = o
		}
		for v, o := range d.Quotes {
			all++
			if _, ok := r.parleyOfferMicros(d, v); ok {
				fast++
			}
			got, want := r.offerFor(d, v, o.Rounds+1), r.offerForDecimal(d, v, o.Rounds+1)
			if !got.Equal(want) {
				t.Fatalf("deal %d, %s (%+v): offer %s in millionths, %s in decimals", i, v, o, got, want)
			}
			checkMemo(t, r, d, v)
			_, probe := r.parleyOffer(o, decimal.Zero, r.cap(d, o))
			if got := r.probes(d, o); got != probe {
				t.Fatalf("deal %d, %s (%+v): probe %v in millionths, %v in decimals", i, v, o, got, probe)
			}
		}
	}
}

// checkMemo: the figures the auction keeps for a deal are the ones worked
// out afresh, also once the buyer's figures or the deal's quantity change.
func checkMemo(t *testing.T, r *Procurement, d *Deal, v string) {
	t.Helper()
	for i := range 3 {
		if got, want := r.secrets(d), r.secretsOf(d); len(got) != len(want) {
			t.Fatalf("secrets %v, worked out %v", got, want)
		} else {
			for j := range got {
				if !got[j].Equal(want[j]) {
					t.Fatalf("secrets %v, worked out %v", got, want)
				}
			}
		}
		if got, want := r.share(d, v), r.shareOf(d, v); !got.Equal(want) {
			t.Fatalf("share %s, worked out %s", got, want)
		}
		if d.Quantity > 0 && !r.Limit.IsZero() {
			if got, want := r.memo(d).limitCap, r.Limit.Amount.Div(decimal.NewFromInt(d.Quantity)).RoundUp(2).Sub(cent); !got.Equal(want) {
				t.Fatalf("cap from the budget %s, worked out %s", got, want)
			}
		}
		switch i {
		case 0:
			r.Ceiling.Amount = r.Ceiling.Amount.Add(cent)
		case 1:
			d.Quantity++
			r.Limit.Amount = r.Limit.Amount.Add(cent)
		}
	}
	r.Ceiling.Amount, r.Limit.Amount = r.Ceiling.Amount.Sub(cent), r.Limit.Amount.Sub(cent)
	d.Quantity--
}

// TestRoundCentsMicros: rounding to cents in millionths is roundCents.
func TestRoundCentsMicros(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 9))
	for range 100_000 {
		k := 3 + rng.IntN(8)
		x := rng.Int64N(2_000_000_000_000) - 1_000_000_000_000
		if rng.IntN(2) == 0 {
			x = rng.Int64N(20_000) - 10_000
		}
		want := Micros(roundCents(decimal.New(x, -int32(k))))
		if got := roundCentsMicros(x, k); got != want {
			t.Fatalf("roundCentsMicros(%d, %d) = %d, roundCents says %d", x, k, got, want)
		}
	}
}

// TestTargetMicros: a vendor's price worked out in millionths is the one
// worked out in decimals — f as the concession curves make it, k/h to
// the power 1/e, and any f from 0 to 1.
func TestTargetMicros(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	var fs []float64
	for h := 1; h <= 30; h++ {
		for k := 0; k <= h; k++ {
			for _, e := range []float64{0.1, 0.2, 0.25, 0.3, 0.5, 1, 2, 3, 4, 5, 8, 10, 0.7 + rng.Float64()*5} {
				fs = append(fs, math.Pow(float64(k)/float64(h), 1/e))
			}
		}
	}
	for range 50_000 {
		fs = append(fs, rng.Float64(), float64(rng.IntN(100_001))/100_000, math.Nextafter(float64(rng.IntN(20_001))/20_000, 2))
	}
	fs = append(fs, 0, 1, 5e-324, 0.00005, 0.00004999999999999999, 0.99995, 0.49995, 1e-20)
	price := func() decimal.Decimal {
		if rng.IntN(8) == 0 {
			return decimal.New(rng.Int64N(20_000_000)+1, -int32(3+rng.IntN(5)))
		}
		return decimal.New(rng.Int64N(30_000)+1, -2)
	}
	fast := 0
	for i, f := range fs {
		list := price()
		floor := list.Mul(decimal.New(int64(50+rng.IntN(50)), -2)).Round(int32(rng.IntN(4)))
		if i%50 == 0 {
			floor = price() // above the list price, at times
		}
		want := targetDecimal(list, floor, f)
		if got, ok := targetMicros(list, floor, f); ok {
			fast++
			if !fromMicros(got).Equal(want) {
				t.Fatalf("f=%v (%s), list %s, floor %s: %s in millionths, %s in decimals", f, decimal.NewFromFloat(f), list, floor, fromMicros(got), want)
			}
		}
		if got, ok := round4(f); ok != (f >= 0 && f <= 1) || ok && got != decimal.NewFromFloat(f).Round(4).Shift(4).IntPart() {
			t.Fatalf("round4(%v) = %d, NewFromFloat says %s", f, got, decimal.NewFromFloat(f).Round(4))
		}
	}
	if fast < len(fs)/2 {
		t.Errorf("only %d of %d prices worked out in millionths", fast, len(fs))
	}
}

// TestNumbersApart: when NumbersApart(subject), the numbers of subject +
// " " + body are those of subject, then those of body.
func TestNumbersApart(t *testing.T) {
	subjects := []string{"COUNTER: 650 widget at 8.53 USD each", "BEST AND FINAL: 12 widget at 5.78 USD each", "QUOTE: 700 widget at 9.29 USD each, delivered Sunday",
		"REQUEST: quote for 700 widget delivered by 2026-12-08", "at 5", "at 5 ", "a", "buy a", "five", "buy five.", "x-", "1st", "the 2ND", "5,", "7.90.", "", "é", "zero",
		"price:4.90", "v2", "at 5 k", "five dollars.", "ten point"}
	bodies := []string{"", "hundred widgets", "k", "thousand", "point two", "and ten cents", "Your quote is above what we can do. Can you meet this price?\n",
		"2026-12-03 at 10:00, the 11th", "-5 units", "5-6 days", "dozen", "a dozen", "1.2k", " 7", "five hundred and five point one two dollars and ten cents"}
	for _, s := range subjects {
		for _, b := range bodies {
			checkNumbersApart(t, s, b)
		}
	}
	if NumbersApart("at 5") || NumbersApart("buy a") || NumbersApart("five") || !NumbersApart("COUNTER: 650 widget at 8.53 USD each") {
		t.Fatal("NumbersApart says what it should not")
	}
}

func checkNumbersApart(t *testing.T, subject, body string) {
	t.Helper()
	if !NumbersApart(subject) {
		return
	}
	got := append(Numbers(subject), Numbers(body)...)
	want := Numbers(subject + " " + body)
	if len(got) != len(want) {
		t.Fatalf("Numbers(%q + %q) = %v, apart %v", subject, body, want, got)
	}
	for i := range got {
		if !got[i].Equal(want[i]) {
			t.Fatalf("Numbers(%q + %q) = %v, apart %v", subject, body, want, got)
		}
	}
}

func FuzzNumbersApart(f *testing.F) {
	f.Add("COUNTER: 650 widget at 8.53 USD each", "Your quote is above what we can do with the offers we have. Can you meet this price?\n")
	f.Add("buy.", "hundred")
	f.Add("at 5 USD", "k units")
	f.Add("the 1st", "2nd of five")
	f.Fuzz(func(t *testing.T, subject, body string) {
		checkNumbersApart(t, subject, body)
	})
}

// TestRise: an offer's rise over the one before, in millionths, is the
// decimals' difference.
func TestRise(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for range 50_000 {
		p := decimal.New(rng.Int64N(2_000_000_000_000)-1_000_000_000_000, -int32(rng.IntN(9)))
		q := decimal.New(rng.Int64N(2_000_000_000)-1_000_000_000, -int32(rng.IntN(9)))
		if got, want := rise(p, q), p.Sub(q); !got.Equal(want) {
			t.Fatalf("rise(%s, %s) = %s, Sub says %s", p, q, got, want)
		}
	}
}
