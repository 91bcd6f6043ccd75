// Decompressing directory responses: dir-spec §6.1 (Content-Encoding
// "identity", "deflate", "gzip"; clients MUST treat concatenated
// compressed documents like compressed concatenated ones), with the
// decompressed size bounded (C tor's tor_uncompress refuses compression
// bombs; here the caller's MaxBody is the bound).

package dirclient

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
)

// decode decompresses raw, sent in encoding enc, into at most limit bytes.
func decode(enc string, raw []byte, limit int64) ([]byte, error) {
	switch enc {
	case "identity":
		return raw, nil
	case "deflate", "x-deflate":
		return readStreams(raw, limit, func(r *bytes.Reader) (io.ReadCloser, error) { return zlib.NewReader(r) })
	case "gzip", "x-gzip":
		return readStreams(raw, limit, func(r *bytes.Reader) (io.ReadCloser, error) {
			zr, err := gzip.NewReader(r)
			if err == nil {
				zr.Multistream(false)
			}
			return zr, err
		})
	}
	return nil, fmt.Errorf("%w: unsupported Content-Encoding %q", ErrEncoding, enc)
}

// readStreams decompresses one or more concatenated compressed streams.
func readStreams(raw []byte, limit int64, open func(*bytes.Reader) (io.ReadCloser, error)) ([]byte, error) {
	src := bytes.NewReader(raw)
	var out bytes.Buffer
	for first := true; first || src.Len() > 0; first = false {
		zr, err := open(src)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrEncoding, err)
		}
		_, err = io.Copy(&out, io.LimitReader(zr, limit+1-int64(out.Len())))
		zr.Close()
		if int64(out.Len()) > limit {
			return nil, fmt.Errorf("%w: more than %d bytes decompressed", ErrBodyTooLarge, limit)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: truncated compressed body", ErrEncoding)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrEncoding, err)
		}
	}
	return out.Bytes(), nil
}
