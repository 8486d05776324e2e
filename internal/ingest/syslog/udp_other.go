//go:build !linux

package syslog

import (
	"errors"
	"net"
)

const oobSize = 0

// enableDropCount does nothing: the kernel's UDP drops are counted on
// Linux only.
func enableDropCount(*net.UDPConn) error { return nil }

// readBuffer is not known here.
func readBuffer(*net.UDPConn) (int, error) { return 0, errUnknown }

func dropCount([]byte) (uint32, bool) { return 0, false }

var errUnknown = errors.New("syslog: not known on this system")
