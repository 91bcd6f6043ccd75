// The K=V values of LOG and STATUS lines (pt-spec §3.3.4, §3.3.5): as C
// tor's kvline_parse with KV_QUOTED, space-separated KEY=VALUE items whose
// value is a bare word or a quoted string with C escapes (control-spec
// §2.1.1 QuotedString/CString).

package pt

import (
	"errors"
	"fmt"
	"strings"
)

func parseKVLine(s string) (Args, error) {
	var out Args
	i := 0
	for {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) {
			return out, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' {
			i++
		}
		if i >= len(s) || s[i] != '=' {
			return nil, fmt.Errorf("%q is not KEY=VALUE", s[start:i])
		}
		key := s[start:i]
		if key == "" {
			return nil, errors.New("empty key")
		}
		i++ // '='
		var val string
		if i < len(s) && s[i] == '"' {
			var err error
			val, i, err = unquote(s, i)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", key, err)
			}
			if i < len(s) && s[i] != ' ' {
				return nil, fmt.Errorf("%s: text after closing quote", key)
			}
		} else {
			vs := i
			for i < len(s) && s[i] != ' ' {
				i++
			}
			val = s[vs:i]
		}
		out = append(out, Arg{Key: key, Value: val})
	}
}

// unquote reads the quoted string starting at s[i] == '"' and returns its
// value and the index after the closing quote.
func unquote(s string, i int) (string, int, error) {
	var b strings.Builder
	i++
	for i < len(s) {
		c := s[i]
		switch c {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 >= len(s) {
				return "", 0, errors.New("backslash at end of quoted string")
			}
			e := s[i+1]
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '\\', '"', '\'':
				b.WriteByte(e)
			case '0', '1', '2', '3', '4', '5', '6', '7':
				// Up to three octal digits, value at most 0377.
				n, j := 0, i+1
				for j < len(s) && j < i+4 && s[j] >= '0' && s[j] <= '7' {
					n = n*8 + int(s[j]-'0')
					j++
				}
				if n > 0377 {
					return "", 0, errors.New("octal escape out of range")
				}
				b.WriteByte(byte(n))
				i = j
				continue
			default:
				return "", 0, fmt.Errorf("unknown escape \\%c", e)
			}
			i += 2
		default:
			b.WriteByte(c)
			i++
		}
	}
	return "", 0, errors.New("unterminated quoted string")
}
