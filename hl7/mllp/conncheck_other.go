//go:build !unix

package mllp

import "net"

// connAlive cannot peek at the socket on this platform; a closed connection is
// found when the next Send fails.
func connAlive(net.Conn) bool { return true }
