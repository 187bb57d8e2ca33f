package gateway

import (
	"io"
	"sync/atomic"
)

// replyMemory bounds the bytes of receivers' replies held at once, over all POSTs: with 1,024
// POSTs in flight and replies of up to 1 MiB, unbounded replies could take a gigabyte.
type replyMemory struct {
	max  int64
	used atomic.Int64
}

// reserve takes n bytes if they fit, and reports whether they did.
func (m *replyMemory) reserve(n int64) bool {
	for {
		u := m.used.Load()
		if u+n > m.max {
			return false
		}
		if m.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (m *replyMemory) release(n int64) { m.used.Add(-n) }

func (m *replyMemory) inUse() int64 { return m.used.Load() }

// replyChunk is how much of a reply of unknown length is taken at first; the buffer doubles from
// there.
const replyChunk = 16 << 10

// readReply reads a reply's body, keeping at most MaxResponseBytes (tooLong: there was more),
// within the memory replies may hold at once: when that runs out, at most the first 4 KiB (the
// log's excerpt) is kept and starved is set. held is the memory taken, for the caller to release
// once it is done with body.
func (s *Sender) readReply(r io.Reader, contentLength int64) (body []byte, held int64, tooLong, starved bool, err error) {
	limit := s.o.MaxResponseBytes + 1 // one byte more tells a reply that is too long
	first := int64(replyChunk)
	if contentLength >= 0 {
		first = contentLength + 1 // room to see the end without growing
	}
	excerptOnly := false
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= limit {
				break
			}
			if excerptOnly {
				starved = true
				break
			}
			grow := min(max(first, int64(cap(buf))), limit-int64(cap(buf)))
			if !s.replyMem.reserve(grow) {
				grow = logBodyBytes - int64(cap(buf))
				if grow <= 0 || !s.replyMem.reserve(grow) {
					starved = true
					break
				}
				excerptOnly = true
			}
			held += grow
			next := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(next, buf)
			buf = next
		}
		n, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	if int64(len(buf)) > s.o.MaxResponseBytes {
		tooLong, buf = true, buf[:s.o.MaxResponseBytes]
	}
	return buf, held, tooLong, starved, err
}
