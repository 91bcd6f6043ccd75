// Minimal dir-spec §1.2 meta-format reader for onion service descriptor
// documents (rend-spec-v3 §2.4 uses "the meta-format from dir-spec.txt").

package hsdesc

import (
	"encoding/base64"
	"errors"
	"strings"
)

// ErrSyntax reports a document that does not follow the meta-format.
var ErrSyntax = errors.New("hsdesc: malformed document")

type item struct {
	kw      string
	args    []string
	objType string
	obj     []byte
	off     int // byte offset of the keyword line in the document
}

func isKeywordChar(r rune) bool {
	return r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}

// tokenize splits doc into items. It never panics on bad input.
func tokenize(doc string) ([]item, error) {
	var items []item
	off := 0
	for off < len(doc) {
		end := strings.IndexByte(doc[off:], '\n')
		var line string
		next := len(doc)
		if end >= 0 {
			line, next = doc[off:off+end], off+end+1
		} else {
			line = doc[off:]
		}
		it := item{off: off}
		off = next
		if strings.HasPrefix(line, "-----") {
			return nil, ErrSyntax
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			return nil, ErrSyntax
		}
		for _, r := range f[0] {
			if !isKeywordChar(r) {
				return nil, ErrSyntax
			}
		}
		it.kw, it.args = f[0], f[1:]
		if off < len(doc) && strings.HasPrefix(doc[off:], "-----BEGIN ") {
			e := strings.IndexByte(doc[off:], '\n')
			if e < 0 {
				return nil, ErrSyntax
			}
			begin := doc[off : off+e]
			if !strings.HasSuffix(begin, "-----") || len(begin) < len("-----BEGIN -----") {
				return nil, ErrSyntax
			}
			it.objType = begin[len("-----BEGIN ") : len(begin)-5]
			endLine := "-----END " + it.objType + "-----"
			off += e + 1
			var b64 strings.Builder
			for {
				if off >= len(doc) {
					return nil, ErrSyntax
				}
				e := strings.IndexByte(doc[off:], '\n')
				var l string
				if e < 0 {
					l, off = doc[off:], len(doc)
				} else {
					l, off = doc[off:off+e], off+e+1
				}
				if l == endLine {
					break
				}
				if strings.HasPrefix(l, "-----") {
					return nil, ErrSyntax
				}
				b64.WriteString(strings.TrimSpace(l))
			}
			obj, err := decodeB64(b64.String())
			if err != nil {
				return nil, ErrSyntax
			}
			it.obj = obj
		}
		items = append(items, it)
	}
	return items, nil
}

// decodeB64 accepts standard base64 with or without padding.
func decodeB64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

func decodeKey32(s string) ([32]byte, error) {
	var k [32]byte
	b, err := decodeB64(s)
	if err != nil || len(b) != 32 {
		return k, ErrSyntax
	}
	copy(k[:], b)
	return k, nil
}
