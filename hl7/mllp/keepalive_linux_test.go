package mllp

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// recordingListener hands every accepted connection to conns.
type recordingListener struct {
	net.Listener
	conns chan net.Conn
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.conns <- c
	}
	return c, err
}

// TestServerKeepAlive checks the socket options the server sets on accepted
// connections (Linux: SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT).
func TestServerKeepAlive(t *testing.T) {
	tests := []struct {
		name                  string
		keepAlive             time.Duration
		on                    bool
		idle, interval, count int
	}{
		{name: "default", on: true, idle: 30, interval: 10, count: 3},
		{name: "configured", keepAlive: 2 * time.Minute, on: true, idle: 120, interval: 40, count: 3},
		{name: "disabled", keepAlive: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			rl := &recordingListener{Listener: ln, conns: make(chan net.Conn, 1)}
			s := NewServer(ServerConfig{KeepAlive: tt.keepAlive}, newTestHandler())
			go s.Serve(rl)
			defer s.Close()
			c := dialRaw(t, ln.Addr().String())
			c.write(framed("x"))
			c.expectFrame("ACK:x") // the options are set before the first frame is read
			sc := <-rl.conns
			raw, err := sc.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			get := func(level, opt int) int {
				var v int
				var gerr error
				if err := raw.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), level, opt) }); err != nil {
					t.Fatal(err)
				}
				if gerr != nil {
					t.Fatal(gerr)
				}
				return v
			}
			if on := get(syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) != 0; on != tt.on {
				t.Fatalf("SO_KEEPALIVE = %v, want %v", on, tt.on)
			}
			if !tt.on {
				return
			}
			got := [3]int{get(syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE), get(syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL), get(syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)}
			if want := [3]int{tt.idle, tt.interval, tt.count}; got != want {
				t.Errorf("keep-alive idle/interval/count = %v, want %v", got, want)
			}
		})
	}
}
