package syslog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Errors of FrameReader.Next.
var (
	// ErrFrameTooLarge means a frame was longer than the reader's maximum:
	// it was skipped (read and discarded, never buffered whole) and the
	// reader goes on with the next frame.
	ErrFrameTooLarge = errors.New("syslog: frame too large")
	// ErrFraming means the stream cannot be framed any further (an octet
	// count that is not a number followed by a space, or has more digits
	// than the largest allowed frame needs): the connection must be
	// closed. The wrapping error says what was read.
	ErrFraming = errors.New("syslog: framing error")
)

// FrameReader splits a TCP (or TLS) syslog stream into messages. Each
// frame's first byte decides its framing, so that a connection may mix
// them (rsyslog's imtcp does the same):
//
//   - a digit: octet counting (RFC 6587 3.4.1): MSG-LEN SP MSG, where
//     MSG-LEN has at most as many digits as the maximum size needs;
//   - anything else (normally '<'): non-transparent framing (RFC 6587
//     3.4.2), the message ending at LF or NUL; a CR before the LF is
//     dropped, and a last message without a terminator at the end of the
//     stream is still a message.
//
// Bytes LF, CR and NUL between frames are skipped. A frame longer than
// max is skipped and reported with ErrFrameTooLarge; memory stays within
// max plus the bufio buffer, whatever the input. A FrameReader is used by
// one goroutine.
type FrameReader struct {
	br     *bufio.Reader
	max    int
	digits int // the most digits an octet count may have
	buf    []byte
}

// frameBufferSize is the bufio buffer of each connection: large enough
// for a typical message, small enough for thousands of connections.
const frameBufferSize = 16 << 10

// NewFrameReader returns a FrameReader of r for frames of at most limit
// bytes (limit > 0).
func NewFrameReader(r io.Reader, limit int) *FrameReader {
	return &FrameReader{
		br:     bufio.NewReaderSize(r, min(frameBufferSize, limit+32)),
		max:    limit,
		digits: len(strconv.Itoa(limit)),
	}
}

// Buffered reports whether the reader holds bytes not yet returned, so
// that a caller can tell a Next that will not wait for the network.
func (f *FrameReader) Buffered() bool { return f.br.Buffered() > 0 }

// Next returns the next message. The slice is valid until the following
// call. At the end of the stream it returns io.EOF (or
// io.ErrUnexpectedEOF inside an octet-counted frame); a read error of the
// stream is returned as it is. ErrFrameTooLarge is the only error after
// which Next may be called again.
func (f *FrameReader) Next() ([]byte, error) {
	for {
		c, err := f.br.ReadByte()
		if err != nil {
			return nil, err
		}
		switch {
		case c == '\n' || c == '\r' || c == 0:
			continue // between frames
		case c >= '0' && c <= '9':
			return f.counted(c)
		default:
			if err := f.br.UnreadByte(); err != nil {
				return nil, err
			}
			return f.line()
		}
	}
}

// counted reads an octet-counted frame whose first digit is first.
func (f *FrameReader) counted(first byte) ([]byte, error) {
	n := int(first - '0')
	digits := 1
	for {
		c, err := f.br.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if c == ' ' {
			break
		}
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("%w: octet count followed by %q, not a space", ErrFraming, c)
		}
		digits++
		if digits > f.digits {
			return nil, fmt.Errorf("%w: octet count of more than %d digits (the largest frame is %d bytes)", ErrFraming, f.digits, f.max)
		}
		n = n*10 + int(c-'0')
	}
	if n > f.max {
		if _, err := f.br.Discard(n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrFrameTooLarge, n, f.max)
	}
	if cap(f.buf) < n {
		f.buf = make([]byte, n, max(n, 2*cap(f.buf)))
	}
	f.buf = f.buf[:n]
	if _, err := io.ReadFull(f.br, f.buf); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return f.buf, nil
}

// line reads a frame ending at LF or NUL.
func (f *FrameReader) line() ([]byte, error) {
	f.buf = f.buf[:0]
	size := 0 // bytes of the frame so far, kept or not
	for {
		if f.br.Buffered() == 0 {
			if _, err := f.br.Peek(1); err != nil {
				if errors.Is(err, io.EOF) && size > 0 {
					return f.end(size) // the last line, without its terminator
				}
				return nil, err
			}
		}
		b, _ := f.br.Peek(f.br.Buffered())
		i := terminator(b)
		chunk := b
		if i >= 0 {
			chunk = b[:i]
		}
		if size+len(chunk) <= f.max+1 { // +1: room for a CR before the LF
			f.buf = append(f.buf, chunk...)
		}
		size += len(chunk)
		if i >= 0 {
			_, _ = f.br.Discard(i + 1) // buffered: cannot fail
			return f.end(size)
		}
		_, _ = f.br.Discard(len(b))
	}
}

// end finishes a line of size bytes held in f.buf (unless too large).
func (f *FrameReader) end(size int) ([]byte, error) {
	if size > 0 && size <= len(f.buf) && f.buf[len(f.buf)-1] == '\r' {
		f.buf = f.buf[:len(f.buf)-1]
		size--
	}
	if size > f.max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrFrameTooLarge, f.max)
	}
	return f.buf, nil
}

// terminator is the index of the first LF or NUL in b, or -1.
func terminator(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if j := bytes.IndexByte(b, 0); j >= 0 && (i < 0 || j < i) {
		return j
	}
	return i
}
