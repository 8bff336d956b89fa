package mailbox

import (
	"math/rand/v2"
	"testing"
	"time"
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
