//go:build unix

package mllp

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"time"
)

// aliveCheck tells whether the peer has closed a connection, by peeking at the
// socket without blocking. It catches the common case of a receiver that closed
// an idle connection (idle timeout, restart) before the next message is written
// into it. Only an end of stream or a socket error counts as closed: bytes waiting
// to be read (a TLS 1.3 session ticket, say) are left to the reader. It is built
// once per connection so that checking allocates nothing.
type aliveCheck struct {
	nc    net.Conn
	rc    syscall.RawConn
	peek  func(fd uintptr) bool
	alive bool
	buf   [1]byte
}

func newAliveCheck(c net.Conn) *aliveCheck {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	a := &aliveCheck{nc: c, rc: rc}
	a.peek = func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), a.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			a.alive = n > 0 // 0 bytes without error is the end of stream
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
			a.alive = true
		default:
			a.alive = false
		}
		return true // done: never wait for readability
	}
	return a
}

// ok reports whether the connection still looks open. A nil check knows nothing
// and says yes.
func (a *aliveCheck) ok() bool {
	if a == nil {
		return true
	}
	// A deadline left over from the previous message may have passed; the raw
	// read below must not fail on it.
	if err := a.nc.SetReadDeadline(time.Time{}); err != nil {
		return false
	}
	a.alive = true
	if err := a.rc.Read(a.peek); err != nil {
		return false
	}
	return a.alive
}
