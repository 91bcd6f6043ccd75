// Consensus diffs: dir-spec §4.5 ("Consensus diffs", proposal 140) and
// appendix E ("Limited ed diff format"). A diff names the SHA3-256 of
// the signed part of the consensus it applies to and of the whole
// consensus it yields; its commands ("Nd", "N,Md", "N,$d", "Nc", "N,Mc",
// "Na", blocks ended by ".") apply back to front, so every line number
// refers to the original. C tor: consdiff.c (apply_ed_diff).

package netdoc

import (
	"crypto/sha3"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrDiff is wrapped by every ApplyDiff error.
var ErrDiff = errors.New("netdoc: bad consensus diff")

// IsDiff reports whether a directory answer is a consensus diff rather
// than a consensus.
func IsDiff(body string) bool { return strings.HasPrefix(body, "network-status-diff-version ") }

// ApplyDiff applies diff to base, a consensus whose SHA3-256 digest of
// the signed part is baseDigest (Consensus.SHA3Digest), and returns the
// new consensus text, checked against the diff's digest of it. The new
// consensus must still be parsed and verified.
func ApplyDiff(base string, baseDigest [32]byte, diff string) (string, error) {
	bad := func(format string, a ...any) (string, error) {
		return "", fmt.Errorf("%w: %s", ErrDiff, fmt.Sprintf(format, a...))
	}
	if !strings.HasSuffix(base, "\n") || !strings.HasSuffix(diff, "\n") {
		return bad("document does not end with a newline")
	}
	dl := strings.Split(diff[:len(diff)-1], "\n")
	if len(dl) < 2 || dl[0] != "network-status-diff-version 1" {
		return bad("first line is not network-status-diff-version 1")
	}
	h := strings.Fields(dl[1])
	if len(h) != 3 || h[0] != "hash" || len(h[1]) != 64 || len(h[2]) != 64 {
		return bad("malformed hash line")
	}
	from, err1 := hex.DecodeString(h[1])
	to, err2 := hex.DecodeString(h[2])
	if err1 != nil || err2 != nil {
		return bad("malformed hash line")
	}
	if string(from) != string(baseDigest[:]) {
		return bad("diff is from consensus %s, ours is %X", h[1], baseDigest)
	}
	lines := strings.Split(base[:len(base)-1], "\n")
	type command struct {
		op         byte
		start, end int // lines start..end replaced or deleted; after start for 'a'
		block      []string
	}
	var cmds []command
	prevStart := len(lines) + 1 // commands go back to front
	for i := 2; i < len(dl); i++ {
		cmd := dl[i]
		if cmd == "" {
			return bad("line %d: empty command", i+1)
		}
		c := command{op: cmd[len(cmd)-1]}
		startS, endS, isRange := strings.Cut(cmd[:len(cmd)-1], ",")
		var err error
		if c.start, err = strconv.Atoi(startS); err != nil || c.start < 0 || startS != strconv.Itoa(c.start) {
			return bad("line %d: bad command %q", i+1, truncate(cmd))
		}
		c.end = c.start
		if isRange {
			if endS == "$" && c.op == 'd' {
				c.end = len(lines)
			} else if c.end, err = strconv.Atoi(endS); err != nil || endS != strconv.Itoa(c.end) {
				return bad("line %d: bad command %q", i+1, truncate(cmd))
			}
		}
		if c.op == 'a' || c.op == 'c' {
			for i++; ; i++ {
				if i >= len(dl) {
					return bad("block not ended by \".\"")
				}
				if dl[i] == "." {
					break
				}
				c.block = append(c.block, dl[i])
			}
		}
		switch c.op {
		case 'a':
			if isRange || c.start > len(lines) || c.start >= prevStart {
				return bad("%q out of order or range", truncate(cmd))
			}
			prevStart = c.start + 1
		case 'd', 'c':
			if c.start < 1 || c.end < c.start || c.end > len(lines) || c.end >= prevStart {
				return bad("%q out of order or range", truncate(cmd))
			}
			prevStart = c.start
		default:
			return bad("line %d: unknown command %q", i+1, truncate(cmd))
		}
		cmds = append(cmds, c)
	}
	// Build the result front to back: the commands in reverse order,
	// with the original lines between them.
	var b strings.Builder
	b.Grow(len(base) + len(diff))
	emit := func(ls []string) {
		for _, l := range ls {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	next := 0 // index of the first original line not yet emitted or dropped
	for k := len(cmds) - 1; k >= 0; k-- {
		c := cmds[k]
		if c.op == 'a' {
			emit(lines[next:c.start])
			next = c.start
		} else {
			emit(lines[next : c.start-1])
			next = c.end
		}
		emit(c.block)
	}
	emit(lines[next:])
	out := b.String()
	if got := sha3.Sum256([]byte(out)); string(got[:]) != string(to) {
		return bad("result has digest %X, the diff names %s", got, h[2])
	}
	return out, nil
}
