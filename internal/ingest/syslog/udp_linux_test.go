package syslog

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestKernelDropCount checks that the socket reports the datagrams the
// kernel dropped while its receive buffer was full (SO_RXQ_OVFL).
func TestKernelDropCount(t *testing.T) {
	srv, err := listenUDP("127.0.0.1:0", 4096)
	require.NoError(t, err)
	defer srv.Close()
	n, err := readBuffer(srv)
	require.NoError(t, err)
	require.Positive(t, n)

	c, err := net.Dial("udp", srv.LocalAddr().String())
	require.NoError(t, err)
	defer c.Close()
	msg := make([]byte, 1000)
	for range 500 { // far more than 4 KiB (doubled by the kernel) holds
		_, _ = c.Write(msg)
	}
	buf, oob := make([]byte, 2000), make([]byte, oobSize)
	require.NoError(t, srv.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, _, _, _, err = srv.ReadMsgUDPAddrPort(buf, oob)
	require.NoError(t, err)
	// The datagram read was queued before the drops: the next one sent
	// carries the count.
	_, _ = c.Write(msg)
	var drops uint32
	for range 500 {
		_, oobn, _, _, err := srv.ReadMsgUDPAddrPort(buf, oob)
		require.NoError(t, err)
		if d, ok := dropCount(oob[:oobn]); ok {
			drops = d
			break
		}
	}
	require.Positive(t, drops)
	require.LessOrEqual(t, drops, uint32(500))
}

func TestDropCountParse(t *testing.T) {
	_, ok := dropCount(nil)
	require.False(t, ok)
	_, ok = dropCount(make([]byte, 7))
	require.False(t, ok)
	_, ok = dropCount([]byte{255, 255, 255, 255, 255, 255, 255, 255, 1, 0, 0, 0, 40, 0, 0, 0, 1, 0, 0, 0}) // length beyond the buffer
	require.False(t, ok)
}
