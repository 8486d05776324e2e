//go:build !linux

package snmp

import "net"

// countSocketDrops is not supported here: the kernel's drops are not
// counted.
func countSocketDrops(*net.UDPConn) bool { return false }

func socketDrops([]byte) (uint32, bool) { return 0, false }
