// Package tomlfile decodes parley's TOML files strictly: a syntax error, a
// value of the wrong type and a key nobody reads are all errors, and every
// error names the file and the line (RELIABILITY.md 16).
package tomlfile

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/parley-dev/parley/internal/spell"
)

// Error says where a TOML file is wrong and what to do.
type Error struct {
	File string
	Line int // 0 when not about one line
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Errorf returns an *Error about file at line.
func Errorf(file string, line int, hint, format string, args ...any) *Error {
	return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...), Hint: hint}
}

// DecodeFile reads the file at path into v.
func DecodeFile(path string, v any) (toml.MetaData, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return toml.MetaData{}, err
	}
	return Decode(path, string(data), v)
}

var lineOf = regexp.MustCompile(`^toml: line (\d+)(?: \(last key "([^"]*)"\))?: (.*)$`)

// Decode decodes data, read from the file named name, into v.
func Decode(name, data string, v any) (toml.MetaData, error) {
	md, err := toml.Decode(data, v)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			line := pe.Position.Line
			if p := pe.Position.Start; p > 0 && p <= len(data) {
				// The lexer has counted the newline it stopped at; the byte
				// offset says which line the fault is on.
				line = 1 + strings.Count(data[:p], "\n")
			}
			return md, &Error{File: name, Line: line, Msg: strings.TrimPrefix(pe.Message, "toml: "), Hint: "see the TOML syntax at toml.io"}
		}
		if m := lineOf.FindStringSubmatch(err.Error()); m != nil {
			n, _ := strconv.Atoi(m[1])
			msg := m[3]
			if m[2] != "" {
				msg = m[2] + ": " + msg
			}
			return md, &Error{File: name, Line: n, Msg: msg}
		}
		return md, &Error{File: name, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	if und := md.Undecoded(); len(und) > 0 {
		key := und[0]
		hint := "remove it, or check its spelling against the documented keys"
		if guess := spell.Nearest(key[len(key)-1], keysAt(reflect.TypeOf(v), key[:len(key)-1])); guess != "" {
			hint = fmt.Sprintf("did you mean %s? (else remove it)", strings.Join(append(key[:len(key)-1:len(key)-1], guess), "."))
		}
		return md, &Error{File: name, Line: Find(data, key[len(key)-1], ""), Msg: fmt.Sprintf("unknown key %q", key.String()), Hint: hint}
	}
	return md, nil
}

// keysAt lists the keys the table at path of a file decoded into a value
// of type t may have (its fields' toml names), for a guess at a misspelt
// one; none where any key is taken (a map) or the path leads nowhere.
func keysAt(t reflect.Type, path []string) []string {
	for _, part := range path {
		t = elem(t)
		if t.Kind() != reflect.Struct {
			return nil
		}
		f, ok := fieldOf(t, part)
		if !ok {
			return nil
		}
		t = f.Type
	}
	t = elem(t)
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for _, f := range reflect.VisibleFields(t) {
		if n := tomlName(f); n != "" && !f.Anonymous {
			keys = append(keys, n)
		}
	}
	return keys
}

// elem is t without pointers, slices and arrays: an array of tables'
// table.
func elem(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	return t
}

func fieldOf(t reflect.Type, key string) (reflect.StructField, bool) {
	for _, f := range reflect.VisibleFields(t) {
		if !f.Anonymous && tomlName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// tomlName is the key of field f, as BurntSushi/toml reads it ("" for none).
func tomlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	switch tag {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return tag
}

// Find returns the first line of data that sets key (the last part of a
// dotted key), to value when value is not empty, or 0. BurntSushi/toml does
// not say where a key is, so errors about keys and values look it up.
func Find(data, key, value string) int {
	k := `(?:"` + regexp.QuoteMeta(key) + `"|` + regexp.QuoteMeta(key) + `)`
	v := ""
	if value != "" {
		v = `\s*(?:"` + regexp.QuoteMeta(value) + `"|'` + regexp.QuoteMeta(value) + `'|` + regexp.QuoteMeta(value) + `)\s*(?:#.*)?$`
	}
	re := regexp.MustCompile(`^\s*` + k + `\s*=` + v)
	for i, line := range strings.Split(data, "\n") {
		if re.MatchString(line) {
			return i + 1
		}
	}
	return 0
}

// Line returns the first line of data that holds s, or 0: for a value
// inside an array, which Find cannot point at.
func Line(data, s string) int {
	for i, line := range strings.Split(data, "\n") {
		if strings.Contains(line, s) {
			return i + 1
		}
	}
	return 0
}
