// Package netdoc parses Tor directory documents.
//
// This file implements the generic document meta-format of dir-spec §1.2
// ("Document meta-format"), with UTF-8 text (see checkText): keyword
// lines with whitespace-separated arguments, each optionally followed by
// one PEM-like object
// ("-----BEGIN X-----" base64 "-----END X-----"). Every item records its
// line number and byte offsets so that parsers can report errors by line
// and compute signed digests over exact byte ranges (dir-spec §1.3).
package netdoc

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error is a parse error at a line of a document (1-based; 0 when the
// error concerns the whole document).
type Error struct {
	Doc  string // document kind, e.g. "consensus"
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("netdoc: %s: line %d: %s", e.Doc, e.Line, e.Msg)
	}
	return fmt.Sprintf("netdoc: %s: %s", e.Doc, e.Msg)
}

func errf(doc string, line int, format string, a ...any) error {
	return &Error{Doc: doc, Line: line, Msg: fmt.Sprintf(format, a...)}
}

// Object is the PEM-like object following a keyword line.
type Object struct {
	Label string // e.g. "RSA PUBLIC KEY", "SIGNATURE"
	Data  []byte // decoded base64
}

// Item is one keyword line and its optional object.
type Item struct {
	Keyword string
	Args    []string
	Object  *Object
	Line    int // line number of the keyword line (1-based)
	// Start is the byte offset of the keyword line; ArgsEnd the offset
	// just past the keyword line's newline; End the offset just past the
	// item (after the object's END line, if any).
	Start, ArgsEnd, End int
}

// Arg returns argument i or "".
func (it *Item) Arg(i int) string {
	if i < len(it.Args) {
		return it.Args[i]
	}
	return ""
}

// Tokenizer splits a document into items. It never panics on malformed
// input; errors carry line numbers.
type Tokenizer struct {
	doc  string
	src  string
	pos  int
	line int // number of the next line to read (1-based)
	err  error
	// reusable argument storage to cut allocations
}

// NewTokenizer returns a tokenizer over src; doc names the document kind
// for error messages.
func NewTokenizer(doc string, src string) *Tokenizer {
	return &Tokenizer{doc: doc, src: src, line: 1}
}

// Pos returns the byte offset of the next unread item.
func (t *Tokenizer) Pos() int { return t.pos }

// Line returns the line number of the next unread line.
func (t *Tokenizer) Line() int { return t.line }

// Err returns the first error encountered, if any.
func (t *Tokenizer) Err() error { return t.err }

func (t *Tokenizer) readLine() (line string, start int, ok bool) {
	if t.pos >= len(t.src) {
		return "", t.pos, false
	}
	start = t.pos
	i := strings.IndexByte(t.src[t.pos:], '\n')
	if i < 0 {
		t.err = errf(t.doc, t.line, "missing newline at end of document")
		t.pos = len(t.src)
		return "", start, false
	}
	line = t.src[t.pos : t.pos+i]
	t.pos += i + 1
	t.line++
	return line, start, true
}

func isKeywordChar(c byte, first bool) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		return true
	case c == '-':
		return !first
	}
	return false
}

// ValidKeyword reports whether s is a keyword per dir-spec §1.2.
func ValidKeyword(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isKeywordChar(s[i], i == 0) {
			return false
		}
	}
	return true
}

// splitArgs splits on runs of spaces and tabs.
func splitArgs(s string) []string {
	n := 0
	inArg := false
	for i := 0; i < len(s); i++ {
		ws := s[i] == ' ' || s[i] == '\t'
		if !ws && !inArg {
			n++
		}
		inArg = !ws
	}
	if n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		if j > i {
			out = append(out, s[i:j])
		}
		i = j
	}
	return out
}

// Next returns the next item, or ok=false at the end of the document or
// on error (check Err).
func (t *Tokenizer) Next() (it Item, ok bool) {
	if t.err != nil {
		return it, false
	}
	var line string
	var start int
	for {
		line, start, ok = t.readLine()
		if !ok {
			return it, false
		}
		if line != "" { // empty lines are allowed (Document ::= (Item | NL)+)
			break
		}
	}
	it.Line = t.line - 1
	it.Start = start
	it.ArgsEnd = t.pos
	kwEnd := strings.IndexAny(line, " \t")
	if kwEnd < 0 {
		kwEnd = len(line)
	}
	it.Keyword = line[:kwEnd]
	if !ValidKeyword(it.Keyword) {
		t.err = errf(t.doc, it.Line, "invalid keyword line %q", truncate(line))
		return Item{}, false
	}
	if msg := checkText(line); msg != "" {
		t.err = errf(t.doc, it.Line, "%s in keyword line", msg)
		return Item{}, false
	}
	it.Args = splitArgs(line[kwEnd:])
	it.End = t.pos
	// Object?
	if strings.HasPrefix(t.src[t.pos:], "-----BEGIN ") {
		obj, err := t.readObject()
		if err != nil {
			t.err = err
			return Item{}, false
		}
		it.Object = obj
		it.End = t.pos
	}
	return it, true
}

// checkText checks the characters of a keyword line. dir-spec §1.2 asks
// for printing ASCII, but relays write UTF-8 into free-text items
// ("contact", "platform") and authorities copy their contact line into
// every consensus, so, as C tor and arti do, any valid UTF-8 is taken.
// Invalid UTF-8 and control characters (C0 other than tab, DEL, C1) are
// refused: they have no place in a document and could forge log or
// control-port lines. It returns "" or what is wrong.
func checkText(s string) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\t') || c == 0x7f {
				return "control character"
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return "invalid UTF-8"
		}
		if unicode.IsControl(r) {
			return "control character"
		}
		i += n
	}
	return ""
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func (t *Tokenizer) readObject() (*Object, error) {
	beginLine := t.line
	line, _, ok := t.readLine()
	if !ok {
		return nil, t.errOr(beginLine, "truncated object")
	}
	if !strings.HasPrefix(line, "-----BEGIN ") || !strings.HasSuffix(line, "-----") || len(line) < len("-----BEGIN -----")+1 {
		return nil, errf(t.doc, beginLine, "malformed object begin line")
	}
	label := line[len("-----BEGIN ") : len(line)-5]
	if !validLabel(label) {
		return nil, errf(t.doc, beginLine, "malformed object label %q", truncate(label))
	}
	endLine := "-----END " + label + "-----"
	var b64 strings.Builder
	for {
		l := t.line
		line, _, ok = t.readLine()
		if !ok {
			return nil, t.errOr(beginLine, "object not terminated by %q", endLine)
		}
		if strings.HasPrefix(line, "-----") {
			if line != endLine {
				return nil, errf(t.doc, l, "object end line %q does not match begin label %q", truncate(line), label)
			}
			break
		}
		if len(line) > 64 {
			return nil, errf(t.doc, l, "object line longer than 64 characters")
		}
		b64.WriteString(line)
	}
	data, err := decodeBase64(b64.String())
	if err != nil {
		return nil, errf(t.doc, beginLine, "bad base64 in object: %v", err)
	}
	return &Object{Label: label, Data: data}, nil
}

func (t *Tokenizer) errOr(line int, format string, a ...any) error {
	if t.err != nil {
		return t.err
	}
	return errf(t.doc, line, format, a...)
}

func validLabel(s string) bool {
	if s == "" {
		return false
	}
	for _, w := range strings.Split(s, " ") {
		if !ValidKeyword(w) {
			return false
		}
	}
	return true
}

// decodeBase64 decodes standard base64 with or without padding.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "=") {
		return nil, errors.New("padding inside data")
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// DecodeBase64 decodes standard base64 with or without trailing padding,
// as used for keys and digests in directory documents.
func DecodeBase64(s string) ([]byte, error) { return decodeBase64(s) }

// decodeFixed decodes base64 into exactly len(dst) bytes.
func decodeFixed(dst []byte, s string) error {
	s = strings.TrimRight(s, "=")
	if base64.RawStdEncoding.DecodedLen(len(s)) != len(dst) {
		return fmt.Errorf("base64 value decodes to %d bytes, want %d", base64.RawStdEncoding.DecodedLen(len(s)), len(dst))
	}
	_, err := base64.RawStdEncoding.Decode(dst, []byte(s))
	return err
}
