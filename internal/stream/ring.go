package stream

// recvBuf holds a stream's received data until the application reads
// it: a byte ring that reuses its storage (it grows, by doubling, only
// while the application lags; the stream window bounds it), and a ring
// of the lengths of the cells still (partly) unread, for stream SENDME
// accounting (tor-spec §7.4 counts cells, not bytes).
type recvBuf struct {
	data []byte
	r, n int // read offset and buffered bytes in data

	lens       []uint16 // unread bytes of each buffered cell
	lr, ncells int
}

// put appends one cell's data.
func (b *recvBuf) put(p []byte) {
	if len(p) == 0 {
		return
	}
	if b.n+len(p) > len(b.data) {
		b.grow(b.n + len(p))
	}
	w := (b.r + b.n) % len(b.data)
	k := copy(b.data[w:], p)
	copy(b.data, p[k:])
	b.n += len(p)
	if b.ncells == len(b.lens) {
		nl := make([]uint16, max(16, 2*len(b.lens)))
		for i := range b.ncells {
			nl[i] = b.lens[(b.lr+i)%len(b.lens)]
		}
		b.lens, b.lr = nl, 0
	}
	b.lens[(b.lr+b.ncells)%len(b.lens)] = uint16(len(p))
	b.ncells++
}

func (b *recvBuf) grow(need int) {
	size := max(2048, 2*len(b.data))
	for size < need {
		size *= 2
	}
	nd := make([]byte, size)
	x, y := b.segments()
	copy(nd[copy(nd, x):], y)
	b.data, b.r = nd, 0
}

// segments returns the buffered data in order, in at most two slices
// that alias the buffer (valid until the next put that grows it or
// overwrites consumed space).
func (b *recvBuf) segments() (x, y []byte) {
	if b.n == 0 {
		return nil, nil
	}
	end := b.r + b.n
	if end <= len(b.data) {
		return b.data[b.r:end], nil
	}
	return b.data[b.r:], b.data[:end-len(b.data)]
}

// read copies buffered data into p and consumes it.
func (b *recvBuf) read(p []byte) int {
	x, y := b.segments()
	k := copy(p, x)
	k += copy(p[k:], y)
	b.consume(k)
	return k
}

// consume drops the first k buffered bytes.
func (b *recvBuf) consume(k int) {
	k = min(k, b.n)
	b.n -= k
	if b.n == 0 {
		b.r = 0
	} else {
		b.r = (b.r + k) % len(b.data)
	}
	for k > 0 {
		l := int(b.lens[b.lr])
		if k < l {
			b.lens[b.lr] = uint16(l - k)
			return
		}
		k -= l
		b.lr = (b.lr + 1) % len(b.lens)
		b.ncells--
	}
	if b.ncells == 0 {
		b.lr = 0
	}
}

// reset drops everything and the storage.
func (b *recvBuf) reset() { *b = recvBuf{} }
