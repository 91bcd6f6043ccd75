// Package torrc reads C tor's configuration syntax, as described by C
// tor's doc/torrc_format.txt and the tor(1) manual ("THE CONFIGURATION
// FILE FORMAT", "%include"), and C tor's command-line option syntax.
//
// It knows nothing about what options mean: it turns a file (with its
// %include files) or a command line into an ordered list of Lines.
// Keywords keep their spelling; they are compared case-insensitively by
// the config package.
//
// Syntax, as C tor parses it:
//   - "#" starts a comment, outside quoted values; blank lines are skipped.
//   - A line is a keyword, whitespace, and a value that runs to the end
//     of the line, without trailing whitespace. A keyword alone has the
//     empty value.
//   - A backslash immediately before a newline continues the value on the
//     next line; the backslash and newline are removed. Inside a
//     continued value, a comment also continues the value to the next
//     line (torrc_format.txt §4.1's "yucky part").
//   - A value starting with a double quote is a C string: \n \r \t \\ \"
//     \' \xHH and octal \NNN escapes; only whitespace and a comment may
//     follow the closing quote.
//   - "+Key" appends to a list set in a lower-priority source (the
//     defaults file), "/Key" clears it (Op).
//   - "%include PATH" reads a file, every non-dot file of a directory in
//     lexical order (not recursing into subdirectories), or the files a
//     glob pattern matches; relative paths are relative to the working
//     directory, as in C tor.
package torrc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Op is the magic prefix of a line.
type Op uint8

const (
	OpSet    Op = iota // Key value
	OpAppend           // +Key value
	OpClear            // /Key
)

// Line is one configuration entry.
type Line struct {
	Key    string // without the +// prefix
	Value  string
	Op     Op
	File   string // file name, or "command line"
	LineNo int    // 1-based line of the keyword; argument index for the command line
}

// Pos returns "file:line" for messages.
func (l Line) Pos() string {
	if l.File == CommandLineFile {
		return fmt.Sprintf("command line argument %d", l.LineNo)
	}
	return fmt.Sprintf("%s:%d", l.File, l.LineNo)
}

// CommandLineFile is the File of lines from the command line.
const CommandLineFile = "command line"

// Error is a syntax error at a position.
type Error struct {
	File   string
	LineNo int
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.LineNo, e.Msg) }

// MaxIncludeDepth is how deeply %include may nest (C tor's
// MAX_INCLUDE_RECURSION_LEVEL).
const MaxIncludeDepth = 31

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// Parse splits data into lines without processing %include: a %include
// line is returned with Key "%include".
func Parse(data []byte, file string) ([]Line, error) {
	var out []Line
	s := string(data)
	if k := strings.IndexByte(s, 0); k >= 0 {
		return nil, &Error{file, 1 + strings.Count(s[:k], "\n"), "NUL byte in configuration"}
	}
	i, lineNo := 0, 1
	advance := func(to int) {
		lineNo += strings.Count(s[i:to], "\n")
		i = to
	}
	for {
		// Skip whitespace and comment lines.
		j := i
		for j < len(s) {
			if isSpace(s[j]) {
				j++
			} else if s[j] == '#' {
				for j < len(s) && s[j] != '\n' {
					j++
				}
			} else {
				break
			}
		}
		advance(j)
		if i >= len(s) {
			return out, nil
		}
		start := lineNo
		// Keyword: up to whitespace, '#', or backslash-newline.
		j = i
		for j < len(s) && !isSpace(s[j]) && s[j] != '#' && !(s[j] == '\\' && j+1 < len(s) && s[j+1] == '\n') {
			j++
		}
		key := s[i:j]
		advance(j)
		line := Line{Key: key, File: file, LineNo: start}
		// Skip blanks (and backslash-newlines) before the value.
		for j < len(s) && (s[j] == ' ' || s[j] == '\t' || (s[j] == '\\' && j+1 < len(s) && s[j+1] == '\n')) {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		advance(j)
		if i < len(s) && s[i] == '"' {
			val, n, err := unquote(s[i:])
			if err != nil {
				return nil, &Error{file, start, err.Error()}
			}
			j = i + n
			for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r') {
				j++
			}
			if j < len(s) && s[j] != '#' && s[j] != '\n' {
				return nil, &Error{file, start, "excess data after quoted string"}
			}
			for j < len(s) && s[j] != '\n' {
				j++
			}
			line.Value = val
		} else {
			// Plain value, possibly continued.
			continued := false
			for j < len(s) && s[j] != '\n' && (s[j] != '#' || continued) {
				switch {
				case s[j] == '\\' && j+1 < len(s) && s[j+1] == '\n':
					continued = true
					j += 2
				case s[j] == '#':
					for j < len(s) && s[j] != '\n' {
						j++
					}
					if j < len(s) {
						j++
					}
				default:
					j++
				}
			}
			raw := strings.TrimRight(s[i:j], " \t\r\n\v\f")
			if continued {
				raw = joinContinued(raw)
			}
			line.Value = raw
		}
		advance(j)
		switch {
		case strings.HasPrefix(line.Key, "+"):
			line.Op, line.Key = OpAppend, line.Key[1:]
		case strings.HasPrefix(line.Key, "/"):
			line.Op, line.Key = OpClear, line.Key[1:]
		}
		if line.Key == "" {
			return nil, &Error{file, start, "missing keyword"}
		}
		out = append(out, line)
	}
}

// joinContinued removes backslash-newlines and comments from a continued
// value.
func joinContinued(v string) string {
	var b strings.Builder
	for k := 0; k < len(v); {
		switch {
		case v[k] == '#':
			for k < len(v) && v[k] != '\n' {
				k++
			}
			if k < len(v) {
				k++
			}
		case v[k] == '\\' && k+1 < len(v) && v[k+1] == '\n':
			k += 2
		default:
			b.WriteByte(v[k])
			k++
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// unquote decodes the C string at the start of s (which begins with a
// double quote), returning the value and the bytes consumed.
func unquote(s string) (string, int, error) {
	var b strings.Builder
	for k := 1; k < len(s); {
		c := s[k]
		switch c {
		case '"':
			return b.String(), k + 1, nil
		case '\n', 0:
			return "", 0, errors.New("unterminated quoted string")
		case '\\':
			if k+1 >= len(s) {
				return "", 0, errors.New("unterminated quoted string")
			}
			e := s[k+1]
			switch {
			case e == 'n':
				b.WriteByte('\n')
				k += 2
			case e == 'r':
				b.WriteByte('\r')
				k += 2
			case e == 't':
				b.WriteByte('\t')
				k += 2
			case e == '\\' || e == '"' || e == '\'':
				b.WriteByte(e)
				k += 2
			case e == 'x' || e == 'X':
				if k+3 >= len(s) || !isHex(s[k+2]) || !isHex(s[k+3]) {
					return "", 0, errors.New("invalid \\x escape in quoted string")
				}
				b.WriteByte(hexVal(s[k+2])<<4 | hexVal(s[k+3]))
				k += 4
			case '0' <= e && e <= '7':
				n, m := 0, k+1
				for m < len(s) && m < k+4 && '0' <= s[m] && s[m] <= '7' {
					n = n*8 + int(s[m]-'0')
					m++
				}
				if n > 255 {
					return "", 0, errors.New("octal escape out of range in quoted string")
				}
				b.WriteByte(byte(n))
				k = m
			default:
				return "", 0, fmt.Errorf("invalid escape sequence \\%c in quoted string", e)
			}
		default:
			b.WriteByte(c)
			k++
		}
	}
	return "", 0, errors.New("unterminated quoted string")
}

// ParseFile reads path and expands its %include lines.
func ParseFile(path string) ([]Line, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseIncludes(data, path)
}

// ParseIncludes parses data (read from file) and expands %include lines.
func ParseIncludes(data []byte, file string) ([]Line, error) {
	return parseIncludes(data, file, 0)
}

func parseIncludes(data []byte, file string, depth int) ([]Line, error) {
	lines, err := Parse(data, file)
	if err != nil {
		return nil, err
	}
	var out []Line
	for _, l := range lines {
		if !strings.EqualFold(l.Key, "%include") {
			out = append(out, l)
			continue
		}
		if depth >= MaxIncludeDepth {
			return nil, &Error{l.File, l.LineNo, "%include nested too deeply"}
		}
		files, err := includeFiles(l.Value)
		if err != nil {
			return nil, &Error{l.File, l.LineNo, err.Error()}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, &Error{l.File, l.LineNo, err.Error()}
			}
			inc, err := parseIncludes(data, f, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, inc...)
		}
	}
	return out, nil
}

// includeFiles lists the files a %include pattern names, in order.
func includeFiles(pattern string) ([]string, error) {
	if pattern == "" {
		return nil, errors.New("%include without a path")
	}
	matches := []string{pattern}
	if strings.ContainsAny(pattern, "*?[") {
		var err error
		if matches, err = filepath.Glob(pattern); err != nil {
			return nil, fmt.Errorf("%%include %q: %v", pattern, err)
		}
		slices.Sort(matches)
	}
	var files []string
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil {
			return nil, fmt.Errorf("%%include: %v", err)
		}
		if !st.IsDir() {
			files = append(files, m)
			continue
		}
		ents, err := os.ReadDir(m) // sorted by name
		if err != nil {
			return nil, fmt.Errorf("%%include: %v", err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			full := filepath.Join(m, e.Name())
			if st, err := os.Stat(full); err == nil && st.Mode().IsRegular() {
				files = append(files, full)
			}
		}
	}
	return files, nil
}
