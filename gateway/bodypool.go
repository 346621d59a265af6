package gateway

import (
	"sync"

	"github.com/stompgate/stompgate/gateway/codec"
)

// Pooled SEND bodies. With amqp.resume_sessions off, the codec reads
// counted bodies of codec.PooledBodyMin bytes or more into buffers from
// bodyPools (getBody), and the session loop returns a SEND's body once its
// publish has returned (session.recycleBody): amqp091-go writes the body to
// the socket, or coalescingConn copies it, before Publish returns, and
// nothing else keeps it. A body that is kept — in a transaction until
// COMMIT, with the activemq dialect, for a token renewal, or in s.inflight
// for a resume — is never returned and stays an ordinary allocation.
//
// The pools hold one size class each; a buffer's class is its capacity.
// sync.Pool lets unused buffers go over two garbage collections, so an idle
// gateway holds none. Buffers travel boxed (*[]byte) and the boxes are
// recycled too, so a steady stream of large SENDs allocates nothing.
var bodyClasses = [...]int{16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20}

var (
	bodyPools [len(bodyClasses)]sync.Pool // of *[]byte with a buffer
	bodyBoxes sync.Pool                   // of empty *[]byte
)

// getBody returns a buffer of length n from its class's pool; a new one if
// the pool is empty, or if n is beyond every class.
func getBody(n int) []byte {
	for i, size := range bodyClasses {
		if n > size {
			continue
		}
		if box, ok := bodyPools[i].Get().(*[]byte); ok {
			b := *box
			*box = nil
			bodyBoxes.Put(box)
			return b[:n]
		}
		return make([]byte, n, size)
	}
	return make([]byte, n)
}

// putBody gives a buffer from getBody back to its pool.
func putBody(b []byte) {
	for i, size := range bodyClasses {
		if cap(b) != size {
			continue
		}
		box, ok := bodyBoxes.Get().(*[]byte)
		if !ok {
			box = new([]byte)
		}
		*box = b[:0]
		bodyPools[i].Put(box)
		return
	}
}

// recycleBody returns f's body to the pool after handleFrame processed f
// without error, unless something may still hold it (see above). Only
// called from the session loop.
func (s *session) recycleBody(f *codec.Frame) {
	if f.Command != codec.CmdSend || len(f.Body) < codec.PooledBodyMin || !s.poolBodies || s.activeMQ() {
		return
	}
	if _, inTx := f.Headers.Get("transaction"); inTx {
		return // buffered until COMMIT
	}
	if f.Headers.Value("destination") == tokenDestination {
		return
	}
	putBody(f.Body)
	f.Body = nil
}
