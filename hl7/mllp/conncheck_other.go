//go:build !unix

package mllp

import "net"

// aliveCheck cannot peek at the socket on this platform; a closed connection is
// found when the next Send fails.
type aliveCheck struct{}

func newAliveCheck(net.Conn) *aliveCheck { return nil }

func (a *aliveCheck) ok() bool { return true }
