package mailbox

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
)

// Money is an exact decimal amount in one currency. The zero Money (no
// currency) means "absent"; arithmetic between currencies is refused, never
// converted.
type Money struct {
	Amount   decimal.Decimal
	Currency string
}

// maxAmountDigits bounds the digits on either side of the point, so that no
// amount a message can carry is out of reach of exact arithmetic or of a
// person reading it.
const (
	maxIntDigits  = 15
	maxFracDigits = 6
)

// minorUnits are the currencies whose minor unit is not the cent (ISO 4217).
var minorUnits = map[string]int32{
	"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "PYG": 0,
	"BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3,
}

// ErrMoney is wrapped by every error ParseMoney returns.
var ErrMoney = errors.New("not an amount")

// ParseMoney reads an amount written as "4.80 USD": a plain decimal number
// (no exponent, no thousands separators), one space, and an ISO 4217 code.
func ParseMoney(s string) (Money, error) {
	num, cur, _ := strings.Cut(strings.TrimSpace(s), " ")
	cur = strings.TrimSpace(cur)
	if err := checkDecimal(num); err != nil {
		return Money{}, fmt.Errorf("%w: %q %v", ErrMoney, num, err)
	}
	if cur == "" {
		return Money{}, fmt.Errorf("%w: %q has no currency", ErrMoney, s)
	}
	if !isCurrency(cur) {
		return Money{}, fmt.Errorf("%w: %q is not a currency code (three capital letters such as USD)", ErrMoney, cur)
	}
	d, err := decimal.NewFromString(num)
	if err != nil {
		return Money{}, fmt.Errorf("%w: %q: %v", ErrMoney, num, err)
	}
	return Money{Amount: d, Currency: cur}, nil
}

// MustMoney is ParseMoney for constants in code and tests.
func MustMoney(s string) Money {
	m, err := ParseMoney(s)
	if err != nil {
		panic(err)
	}
	return m
}

func isCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// checkDecimal accepts -?DIGITS(.DIGITS)? within the digit bounds.
func checkDecimal(s string) error {
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasPoint := strings.Cut(s, ".")
	if intPart == "" || (hasPoint && frac == "") {
		return errors.New("is not a decimal number")
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return errors.New("is not a plain decimal number")
			}
		}
	}
	if len(intPart) > maxIntDigits {
		return fmt.Errorf("has more than %d digits before the point", maxIntDigits)
	}
	if len(frac) > maxFracDigits {
		return fmt.Errorf("has more than %d digits after the point", maxFracDigits)
	}
	return nil
}

// UnmarshalText reads an amount such as "2500.00 USD", for configuration
// files.
func (m *Money) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = Money{} // absent, as MarshalText writes it
		return nil
	}
	v, err := ParseMoney(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// MarshalText writes m as String does.
func (m Money) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// IsZero reports whether m is absent (no currency).
func (m Money) IsZero() bool { return m.Currency == "" }

// String writes m canonically: the number (see Decimal), a space and the
// code: "4.80 USD", "1200 JPY".
func (m Money) String() string {
	if m.IsZero() {
		return ""
	}
	var buf [64]byte
	return string(m.AppendTo(buf[:0]))
}

// AppendTo appends m.String() to b (TestMoneyStringFast).
func (m Money) AppendTo(b []byte) []byte {
	if m.IsZero() {
		return b
	}
	places, ok := minorUnits[m.Currency]
	if !ok {
		places = 2
	}
	if x, ok := appendDecimalFast(b, m.Amount, places); ok {
		return append(append(x, ' '), m.Currency...) // every message's price is written: without allocating
	}
	return append(append(append(b, m.Decimal()...), ' '), m.Currency...)
}

// Decimal writes the amount alone, with at least the currency's minor
// digits and no trailing zeros beyond them: "4.80", "4.805", "1200".
func (m Money) Decimal() string {
	places, ok := minorUnits[m.Currency]
	if !ok {
		places = 2
	}
	if s, ok := decimalFast(m.Amount, places); ok {
		return s
	}
	if exp := -m.Amount.Normalize().Exponent(); exp > places {
		places = exp
	}
	return m.Amount.StringFixed(places)
}

// maxCoef bounds the factors Times multiplies in an int64: 3·10^9 each,
// a product under 9·10^18.
const maxCoef = 3_000_000_000

// decimalFast is Decimal for an amount whose coefficient fits an int64
// with room to spare, in integer arithmetic: Normalize and StringFixed
// work in big.Int, and every message a simulated deal sends writes its
// amount for the ledger (TestDecimalFast: the same text).
func decimalFast(d decimal.Decimal, minor int32) (string, bool) {
	var buf [48]byte
	b, ok := appendDecimalFast(buf[:0], d, minor)
	if !ok {
		return "", false
	}
	return string(b), true
}

// appendDecimalFast appends decimalFast's text to b, without allocating.
func appendDecimalFast(b []byte, d decimal.Decimal, minor int32) ([]byte, bool) {
	e := d.Exponent()
	if e > 0 || e < -18 || d.NumDigits() > 15 {
		return b, false
	}
	return appendCoefficient(b, d.CoefficientInt64(), e, minor), true
}

// appendCoefficient appends the text of c·10^e (e from -18 to 0, |c|
// under 10^15) as decimalFast writes it.
func appendCoefficient(b []byte, c int64, e int32, minor int32) []byte {
	for e < 0 && c%10 == 0 {
		c /= 10
		e++
	}
	places := max(minor, -e)
	for range places + e { // at most minor: c stays under 10^18
		c *= 10
	}
	neg := c < 0
	if neg {
		c = -c
		b = append(b, '-')
	}
	var buf [24]byte
	digits := strconv.AppendInt(buf[:0], c, 10)
	if places <= 0 {
		return append(b, digits...)
	}
	p := int(places)
	if whole := len(digits) - p; whole > 0 {
		b = append(b, digits[:whole]...)
		b = append(b, '.')
		return append(b, digits[whole:]...)
	}
	b = append(b, '0', '.') // under one: zeros after the point, then the digits
	for range p - len(digits) {
		b = append(b, '0')
	}
	return append(b, digits...)
}

// Cmp compares two amounts of one currency; it is an error to compare across
// currencies.
func (m Money) Cmp(o Money) (int, error) {
	if m.Currency != o.Currency {
		return 0, fmt.Errorf("compare %s with %s: different currencies", m, o)
	}
	return m.Amount.Cmp(o.Amount), nil
}

// Add returns m+o, refusing to mix currencies.
func (m Money) Add(o Money) (Money, error) {
	if m.Currency != o.Currency {
		return Money{}, fmt.Errorf("add %s to %s: different currencies", o, m)
	}
	return Money{Amount: m.Amount.Add(o.Amount), Currency: m.Currency}, nil
}

// Times returns m multiplied by a whole quantity, exactly.
// TotalDecimal is m.Total().Decimal() and its currency, without the
// product's decimal for a small price times a quantity (TestTotalDecimal):
// every decision's ledger entry writes it.
func (m *Message) TotalDecimal() (amount, currency string) {
	if !m.Amount.IsZero() || m.UnitPrice.IsZero() {
		if m.Amount.IsZero() {
			return "", ""
		}
		return m.Amount.Decimal(), m.Amount.Currency
	}
	u, q := m.UnitPrice.Amount, max(m.Quantity, 1)
	if c := u.CoefficientInt64(); u.NumDigits() <= 18 && c != 0 && c > -maxCoef && c < maxCoef && q < maxCoef {
		if p, e := c*q, u.Exponent(); e <= 0 && e >= -18 && p > -1e15 && p < 1e15 {
			places, ok := minorUnits[m.UnitPrice.Currency]
			if !ok {
				places = 2
			}
			var buf [48]byte
			return string(appendCoefficient(buf[:0], p, e, places)), m.UnitPrice.Currency
		}
	}
	t := m.Total()
	return t.Decimal(), t.Currency
}

// TotalSign is the currency and the sign of m.Total(), without
// multiplying: "" when it names no money (TestTotalDecimal).
func (m *Message) TotalSign() (currency string, sign int) {
	if !m.Amount.IsZero() || m.UnitPrice.IsZero() {
		return m.Amount.Currency, m.Amount.Amount.Sign()
	}
	return m.UnitPrice.Currency, m.UnitPrice.Amount.Sign() // times a quantity of at least one
}

func (m Money) Times(q int64) Money {
	// A price of a few digits times a quantity: the product of the
	// coefficients, at the price's exponent, is what Mul gives, without
	// its big.Int arithmetic (TestTimes); every priced message's total is
	// one.
	if m.Amount.NumDigits() <= 18 {
		if c := m.Amount.CoefficientInt64(); c != 0 && q != 0 && c > -maxCoef && c < maxCoef && q > -maxCoef && q < maxCoef {
			return Money{Amount: decimal.New(c*q, m.Amount.Exponent()), Currency: m.Currency}
		}
	}
	return Money{Amount: m.Amount.Mul(decimal.NewFromInt(q)), Currency: m.Currency}
}
