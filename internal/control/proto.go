// Wire format of the control protocol: control-spec §2.1 (QuotedString,
// CString), §2.2 (commands, multi-line "+" commands with CmdData), §2.3
// (replies: MidReplyLine "250-", DataReplyLine "250+", EndReplyLine "250 ")
// and §2.4 (CmdData dot-encoding).
package control

import (
	"bufio"
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// errLineTooLong is returned by readCommand when a command exceeds the
// configured bound.
var errLineTooLong = errors.New("line too long")

// command is one parsed controller command.
type command struct {
	// Keyword is the command name as sent (without a leading "+").
	Keyword string
	// Multiline is true for "+KEYWORD" commands.
	Multiline bool
	// Args is the rest of the first line, leading spaces removed.
	Args string
	// Data is the dot-decoded CmdData of a multi-line command, lines joined
	// with "\n".
	Data string
}

// readLine reads one line ending in LF (CRLF or bare LF accepted) and
// returns it without the line ending. At most limit bytes are buffered.
func readLine(r *bufio.Reader, limit int) (string, error) {
	var buf []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(buf)+len(frag) > limit {
			return "", errLineTooLong
		}
		buf = append(buf, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		break
	}
	buf = buf[:len(buf)-1]
	if n := len(buf); n > 0 && buf[n-1] == '\r' {
		buf = buf[:n-1]
	}
	return string(buf), nil
}

// readCommand reads one command, including the data section of a
// multi-line command. limit bounds the total size.
func readCommand(r *bufio.Reader, limit int) (command, error) {
	line, err := readLine(r, limit)
	if err != nil {
		return command{}, err
	}
	cmd := parseCommandLine(line)
	if !cmd.Multiline {
		return cmd, nil
	}
	total := len(line)
	var data []string
	for {
		l, err := readLine(r, limit-total)
		if err != nil {
			return command{}, err
		}
		total += len(l) + 2
		if l == "." {
			break
		}
		if strings.HasPrefix(l, ".") {
			l = l[1:]
		}
		data = append(data, l)
	}
	cmd.Data = strings.Join(data, "\n")
	return cmd, nil
}

// parseCommandLine splits the first line of a command into keyword and
// arguments (control-spec §2.2: Keyword OptArguments).
func parseCommandLine(line string) command {
	var cmd command
	if strings.HasPrefix(line, "+") {
		cmd.Multiline = true
		line = line[1:]
	}
	i := strings.IndexAny(line, " \t\r\n")
	if i < 0 {
		cmd.Keyword = line
		return cmd
	}
	cmd.Keyword = line[:i]
	cmd.Args = strings.TrimLeft(line[i:], " \t\r\n")
	return cmd
}

// arg is one argument of a command line: a bare word, a QuotedString, or a
// Key=Value pair whose value may be quoted.
type arg struct {
	Key    string // empty for positional arguments
	Value  string // unquoted value
	HasEq  bool   // "Key=..." form
	Quoted bool   // the value was a QuotedString
}

// splitArgs tokenizes command arguments (control-spec §2.1, §3): words are
// separated by spaces; a word may be a QuotedString, or Key=Value where
// Value may be a QuotedString.
func splitArgs(s string) ([]arg, error) {
	var out []arg
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return out, nil
		}
		if s[i] == '"' {
			v, n, err := unquote(s[i:])
			if err != nil {
				return nil, err
			}
			i += n
			if i < len(s) && s[i] != ' ' && s[i] != '\t' {
				return nil, errors.New("garbage after quoted string")
			}
			out = append(out, arg{Value: v, Quoted: true})
			continue
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '=' && s[j] != '"' {
			j++
		}
		if j < len(s) && s[j] == '"' {
			return nil, errors.New("unexpected quote")
		}
		if j < len(s) && s[j] == '=' {
			key := s[i:j]
			if key == "" {
				return nil, errors.New("empty key")
			}
			j++
			if j < len(s) && s[j] == '"' {
				v, n, err := unquote(s[j:])
				if err != nil {
					return nil, err
				}
				j += n
				if j < len(s) && s[j] != ' ' && s[j] != '\t' {
					return nil, errors.New("garbage after quoted string")
				}
				out = append(out, arg{Key: key, Value: v, HasEq: true, Quoted: true})
				i = j
				continue
			}
			k := j
			for k < len(s) && s[k] != ' ' && s[k] != '\t' {
				if s[k] == '"' {
					return nil, errors.New("unexpected quote")
				}
				k++
			}
			out = append(out, arg{Key: key, Value: s[j:k], HasEq: true})
			i = k
			continue
		}
		out = append(out, arg{Value: s[i:j]})
		i = j
	}
}

// unquote decodes a QuotedString at the start of s and returns the value
// and the number of bytes consumed. Following control-spec §2.1.1 it
// accepts the C escapes \n \t \r, octal \0..\377 and \xHH, and treats a
// backslash before any other character as that character.
func unquote(s string) (string, int, error) {
	if len(s) == 0 || s[0] != '"' {
		return "", 0, errors.New("missing quote")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			i++
			if i >= len(s) {
				return "", 0, errors.New("unterminated escape")
			}
			switch e := s[i]; {
			case e == 'n':
				b.WriteByte('\n')
			case e == 't':
				b.WriteByte('\t')
			case e == 'r':
				b.WriteByte('\r')
			case e == 'x' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
				v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
				b.WriteByte(byte(v))
				i += 2
			case e >= '0' && e <= '7':
				n := 0
				for n < 3 && i+n < len(s) && s[i+n] >= '0' && s[i+n] <= '7' {
					n++
				}
				v, _ := strconv.ParseUint(s[i:i+n], 8, 16)
				if v > 255 {
					return "", 0, errors.New("octal escape out of range")
				}
				b.WriteByte(byte(v))
				i += n - 1
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, errors.New("unterminated quoted string")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// quote encodes s as a CString the way C tor's esc_for_log does
// (control-spec §2.1.1): backslash, quote, \n, \r, \t escaped, other
// non-printable bytes as three-digit octal.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c >= 0x7f:
			b.WriteByte('\\')
			b.WriteByte('0' + c>>6)
			b.WriteByte('0' + (c>>3)&7)
			b.WriteByte('0' + c&7)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

// reply accumulates the lines of one reply (control-spec §2.3).
type reply struct {
	code  int
	lines []replyLine
}

type replyLine struct {
	text string
	data *string // non-nil for a DataReplyLine
}

func newReply(code int) *reply { return &reply{code: code} }

// Line adds a reply line.
func (r *reply) Line(text string) *reply {
	r.lines = append(r.lines, replyLine{text: text})
	return r
}

// Data adds a DataReplyLine with text, followed by the dot-encoded data.
func (r *reply) Data(text, data string) *reply {
	r.lines = append(r.lines, replyLine{text: text, data: &data})
	return r
}

// Bytes renders the reply; the last line becomes the EndReplyLine. A
// DataReplyLine cannot be last, so "OK" is appended when needed.
func (r *reply) Bytes() []byte {
	if len(r.lines) == 0 || r.lines[len(r.lines)-1].data != nil {
		r.Line("OK")
	}
	var b bytes.Buffer
	code := strconv.Itoa(r.code)
	for i, l := range r.lines {
		b.WriteString(code)
		switch {
		case l.data != nil:
			b.WriteByte('+')
		case i == len(r.lines)-1:
			b.WriteByte(' ')
		default:
			b.WriteByte('-')
		}
		b.WriteString(l.text)
		b.WriteString("\r\n")
		if l.data != nil {
			writeDotEncoded(&b, *l.data)
		}
	}
	return b.Bytes()
}

// writeDotEncoded writes data as CmdData (control-spec §2.4): each line
// CRLF-terminated, leading "." doubled, then ".\r\n".
func writeDotEncoded(b *bytes.Buffer, data string) {
	data = strings.ReplaceAll(data, "\r\n", "\n")
	data = strings.TrimSuffix(data, "\n")
	if data != "" {
		for _, l := range strings.Split(data, "\n") {
			if strings.HasPrefix(l, ".") {
				b.WriteByte('.')
			}
			b.WriteString(l)
			b.WriteString("\r\n")
		}
	}
	b.WriteString(".\r\n")
}

// singleLine renders a one-line reply "CODE text\r\n".
func singleLine(code int, text string) []byte {
	return []byte(strconv.Itoa(code) + " " + text + "\r\n")
}
