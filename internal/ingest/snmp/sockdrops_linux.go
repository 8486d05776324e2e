//go:build linux

package snmp

import (
	"encoding/binary"
	"net"
	"syscall"
)

// countSocketDrops asks the kernel to report, with each datagram, how many
// it dropped on the socket so far for want of buffer room (SO_RXQ_OVFL).
func countSocketDrops(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, 1) //nolint:gosec // a socket's fd
	}); err != nil {
		return false
	}
	return serr == nil
}

// socketDrops reads the kernel's drop count from a datagram's control
// messages.
func socketDrops(oob []byte) (uint32, bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SO_RXQ_OVFL && len(m.Data) >= 4 {
			return binary.NativeEndian.Uint32(m.Data), true
		}
	}
	return 0, false
}
