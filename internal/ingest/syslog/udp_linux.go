package syslog

import (
	"encoding/binary"
	"net"
	"syscall"
)

// oobSize holds one SO_RXQ_OVFL control message.
const oobSize = 64

// enableDropCount turns on SO_RXQ_OVFL: each datagram then comes with the
// socket's count of datagrams the kernel dropped for want of buffer room.
func enableDropCount(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, 1)
	}); err != nil {
		return err
	}
	return serr
}

// readBuffer is the socket's receive buffer as the kernel set it.
func readBuffer(c *net.UDPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var (
		n    int
		serr error
	)
	if err := rc.Control(func(fd uintptr) {
		n, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil {
		return 0, err
	}
	return n, serr
}

// dropCount finds the SO_RXQ_OVFL count in a datagram's control messages.
// The kernel attaches it only once the socket has dropped something.
func dropCount(oob []byte) (uint32, bool) {
	for len(oob) >= syscall.SizeofCmsghdr {
		var length uint64
		var level, typ uint32
		data := syscall.SizeofCmsghdr
		if syscall.SizeofCmsghdr == 16 {
			length = binary.NativeEndian.Uint64(oob[0:8])
			level = binary.NativeEndian.Uint32(oob[8:12])
			typ = binary.NativeEndian.Uint32(oob[12:16])
		} else {
			length = uint64(binary.NativeEndian.Uint32(oob[0:4]))
			level = binary.NativeEndian.Uint32(oob[4:8])
			typ = binary.NativeEndian.Uint32(oob[8:12])
		}
		if length < uint64(data) || length > uint64(len(oob)) {
			return 0, false
		}
		if level == syscall.SOL_SOCKET && typ == syscall.SO_RXQ_OVFL && length >= uint64(data+4) {
			return binary.NativeEndian.Uint32(oob[data : data+4]), true
		}
		next := syscall.CmsgSpace(int(length) - data) //nolint:gosec // length <= len(oob)
		if next <= 0 || next > len(oob) {
			return 0, false
		}
		oob = oob[next:]
	}
	return 0, false
}
