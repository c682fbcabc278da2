//go:build unix

package mllp

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"time"
)

// connAlive reports whether the peer has not closed c, by peeking at the socket
// without blocking. It catches the common case of a receiver that closed an idle
// connection (idle timeout, restart) before the next message is written into it.
// Only an end of stream or a socket error counts as dead: bytes waiting to be read
// (a TLS 1.3 session ticket, say) are left to the reader.
func connAlive(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	// A deadline left over from the previous message may have passed; the raw
	// read below must not fail on it.
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return false
	}
	alive := true
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr == nil:
			alive = n > 0 // 0 bytes without error is the end of stream
		case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EWOULDBLOCK), errors.Is(rerr, syscall.EINTR):
			alive = true
		default:
			alive = false
		}
		return true
	})
	return err == nil && alive
}
