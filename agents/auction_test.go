package agents

import (
	"testing"

	"github.com/shopspring/decimal"
)

// TestMicros: the fast conversion is d.Shift(6).IntPart() for every kind
// of decimal, the ones it takes the slow way included.
func TestMicros(t *testing.T) {
	for _, s := range []string{"0", "5.78", "-5.78", "12", "1200.50", "0.000001", "0.0000019", "-0.0000019", "999999999999",
		"1000000000000", "123456.123456", "1234567.123456", "9.999999999", "1e3", "-1e-7", "4.8050"} {
		d := decimal.RequireFromString(s)
		if got, want := Micros(d), d.Shift(6).IntPart(); got != want {
			t.Errorf("Micros(%s)=%d, want %d", s, got, want)
		}
	}
}
