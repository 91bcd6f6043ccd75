// Reading onion service descriptor documents and their decrypted layers
// with internal/netdoc's tokenizer: rend-spec-v3 §2.4 ("uses the
// meta-format from dir-spec.txt", dir-spec §1.2).

package hsdesc

import "github.com/gotor/gotor/internal/netdoc"

// tokenize splits doc into items; kind names the document in errors
// (*netdoc.Error, with the line). C tor ends the decrypted layers (and
// gotor's Build the outer document) without a newline after the last
// line, which C tor's tokenizer tolerates; no signature covers that last
// line, so one is added here.
func tokenize(kind, doc string) ([]netdoc.Item, error) {
	if doc != "" && doc[len(doc)-1] != '\n' {
		doc += "\n"
	}
	t := netdoc.NewTokenizer(kind, doc)
	var items []netdoc.Item
	for {
		it, ok := t.Next()
		if !ok {
			return items, t.Err()
		}
		items = append(items, it)
	}
}

// hasObject reports whether it is followed by an object labelled label.
func hasObject(it *netdoc.Item, label string) bool {
	return it.Object != nil && it.Object.Label == label
}

func decodeKey32(s string) ([32]byte, error) {
	var k [32]byte
	b, err := netdoc.DecodeBase64(s)
	if err != nil || len(b) != 32 {
		return k, errBadKey
	}
	copy(k[:], b)
	return k, nil
}
