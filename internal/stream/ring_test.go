package stream

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestRecvBufRandom checks the ring against a plain byte slice and cell
// count over random puts and reads (wrap-around, growth, partial cells).
func TestRecvBufRandom(t *testing.T) {
	var b recvBuf
	var want []byte
	var cells []int
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		if rng.IntN(2) == 0 && len(want) < 300000 {
			p := make([]byte, 1+rng.IntN(498))
			for j := range p {
				p[j] = byte(rng.Uint32())
			}
			b.put(p)
			want = append(want, p...)
			cells = append(cells, len(p))
		} else {
			p := make([]byte, rng.IntN(2000))
			k := b.read(p)
			if k != min(len(p), len(want)) || !bytes.Equal(p[:k], want[:k]) {
				t.Fatalf("step %d: read %d bytes, mismatch", i, k)
			}
			want = want[k:]
			for k > 0 {
				if k < cells[0] {
					cells[0] -= k
					break
				}
				k -= cells[0]
				cells = cells[1:]
			}
		}
		if b.n != len(want) || b.ncells != len(cells) {
			t.Fatalf("step %d: n %d want %d, cells %d want %d", i, b.n, len(want), b.ncells, len(cells))
		}
	}
}
