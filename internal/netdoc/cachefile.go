// Documents as C tor stores them in its DataDirectory: annotation lines
// before each document (C tor's "@downloaded-at", "@source",
// "@last-listed", and CollecTor's "@type"; routerparse.c accepts them in
// cached files only, they are never signed) and, on Windows, CRLF line
// ends in files C tor writes in text mode (cached-certs). dir-spec §1.2
// documents have neither.

package netdoc

import "strings"

// FromCacheFile returns the documents of a C tor cache file as they
// were served: CRLF line ends become LF and annotation lines (lines
// starting with '@') are removed. Signatures and digests cover the
// served text, so they verify on the result.
func FromCacheFile(src string) string {
	if !strings.Contains(src, "\r") && !strings.HasPrefix(src, "@") && !strings.Contains(src, "\n@") {
		return src
	}
	var b strings.Builder
	b.Grow(len(src))
	for len(src) > 0 {
		line := src
		rest := ""
		if i := strings.IndexByte(src, '\n'); i >= 0 {
			line, rest = src[:i+1], src[i+1:]
		}
		src = rest
		if strings.HasPrefix(line, "@") {
			continue
		}
		if strings.HasSuffix(line, "\r\n") {
			b.WriteString(line[:len(line)-2])
			b.WriteByte('\n')
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}
