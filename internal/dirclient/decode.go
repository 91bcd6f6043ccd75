// Decompressing directory responses: dir-spec §6.1 (Content-Encoding
// "identity", "deflate", "gzip", "x-zstd", "x-tor-lzma" (LZMA "alone"
// format, preset at most 6); clients MUST treat concatenated compressed
// documents like compressed concatenated ones; proposal 278), with the
// decompressed size bounded (C tor's tor_uncompress refuses compression
// bombs; here the caller's MaxBody is the bound) and the decoders'
// memory too: a zstd window or LZMA dictionary above 16 MiB is refused
// (C tor's lzma decoder has a 16 MiB memory limit; preset 6 uses an
// 8 MiB dictionary).

package dirclient

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz/lzma"
)

// maxDecoderWindow bounds a zstd window and an LZMA dictionary.
const maxDecoderWindow = 16 << 20

// Encodings lists the Content-Encodings decode understands, best first,
// for an Accept-Encoding header.
var Encodings = []string{"x-zstd", "x-tor-lzma", "deflate", "gzip", "identity"}

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
	case "x-zstd":
		zr, err := zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxDecoderWindow), zstd.WithDecoderMaxMemory(uint64(limit)))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrEncoding, err)
		}
		defer zr.Close()
		out, err := readLimited(zr, limit)
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return nil, fmt.Errorf("%w: more than %d bytes decompressed", ErrBodyTooLarge, limit)
		}
		return out, err
	case "x-tor-lzma":
		lr, err := lzma.ReaderConfig{DictCap: maxDecoderWindow}.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%w: lzma: %v", ErrEncoding, err)
		}
		return readLimited(lr, limit)
	}
	return nil, fmt.Errorf("%w: unsupported Content-Encoding %q", ErrEncoding, enc)
}

// readLimited reads r to its end, at most limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes decompressed", ErrBodyTooLarge, limit)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%w: truncated compressed body", ErrEncoding)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncoding, err)
	}
	return out, nil
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
