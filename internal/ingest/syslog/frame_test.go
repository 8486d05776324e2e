package syslog

import (
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// frames reads every frame of in (limit bytes each): the messages, and one
// "!too_large" per skipped frame, then the error that ended the stream.
func frames(in string, limit int, wrap func(io.Reader) io.Reader) ([]string, error) {
	var r io.Reader = strings.NewReader(in)
	if wrap != nil {
		r = wrap(r)
	}
	f := NewFrameReader(r, limit)
	var out []string
	for {
		b, err := f.Next()
		switch {
		case err == nil:
			out = append(out, string(b))
		case errors.Is(err, ErrFrameTooLarge):
			out = append(out, "!too_large")
		default:
			return out, err
		}
	}
}

func TestFrameReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want []string
		err  error // io.EOF for a clean end
	}{
		{name: "octet counting", in: "5 <13>a6 <13>bc", want: []string{"<13>a", "<13>bc"}, err: io.EOF},
		{name: "octet counting, LF after each frame (rsyslog)", in: "5 <13>a\n6 <13>bc\n", want: []string{"<13>a", "<13>bc"}, err: io.EOF},
		{name: "octet-counted frame holds line ends", in: "10 <13>a\nb\r\nc", want: []string{"<13>a\nb\r\nc"}, err: io.EOF},
		{name: "newline", in: "<13>a\n<13>bc\n", want: []string{"<13>a", "<13>bc"}, err: io.EOF},
		{name: "CRLF", in: "<13>a\r\n<13>b\r\n", want: []string{"<13>a", "<13>b"}, err: io.EOF},
		{name: "NUL", in: "<13>a\x00<13>b\x00", want: []string{"<13>a", "<13>b"}, err: io.EOF},
		{name: "last line without LF", in: "<13>a\n<13>b", want: []string{"<13>a", "<13>b"}, err: io.EOF},
		{name: "blank lines between frames", in: "\n\n<13>a\n\r\n\x00<13>b\n", want: []string{"<13>a", "<13>b"}, err: io.EOF},
		{name: "mixed", in: "5 <13>a<13>b\n6 <13>cd<13>e\n", want: []string{"<13>a", "<13>b", "<13>cd", "<13>e"}, err: io.EOF},
		{name: "no PRI: newline framing", in: "hello\nworld\n", want: []string{"hello", "world"}, err: io.EOF},
		{name: "octet count at max", in: "10 0123456789", max: 10, want: []string{"0123456789"}, err: io.EOF},
		{name: "octet count over max: skipped", in: "11 01234567890" + "5 <13>a", max: 10, want: []string{"!too_large", "<13>a"}, err: io.EOF},
		{name: "line at max", in: "<13>456789\n", max: 10, want: []string{"<13>456789"}, err: io.EOF},
		{name: "line at max with CR", in: "<13>456789\r\n", max: 10, want: []string{"<13>456789"}, err: io.EOF},
		{name: "line over max: skipped", in: "<13>4567890\n<13>a\n", max: 10, want: []string{"!too_large", "<13>a"}, err: io.EOF},
		{name: "line over max at the end", in: "<13>4567890", max: 10, want: []string{"!too_large"}, err: io.EOF},
		{name: "long line over max", in: "<13>" + strings.Repeat("x", 100000) + "\n<13>a\n", max: 1000, want: []string{"!too_large", "<13>a"}, err: io.EOF},
		{name: "20-digit count", in: "99999999999999999999 <13>a", max: 65536, err: ErrFraming},
		{name: "count of one digit too many", in: "065536 x", max: 65536, err: ErrFraming},
		{name: "count not followed by space", in: "12x<13>a", err: ErrFraming},
		{name: "frame cut short", in: "10 <13>a", err: io.ErrUnexpectedEOF},
		{name: "count cut short", in: "10", err: io.ErrUnexpectedEOF},
		{name: "empty stream", in: "", err: io.EOF},
		{name: "zero count: an empty frame", in: "0 5 <13>a", want: []string{"", "<13>a"}, err: io.EOF},
	}
	for _, tc := range tests {
		for wrapName, wrap := range map[string]func(io.Reader) io.Reader{"whole": nil, "bytewise": iotest.OneByteReader, "halves": iotest.HalfReader} {
			t.Run(tc.name+"/"+wrapName, func(t *testing.T) {
				limit := tc.max
				if limit == 0 {
					limit = DefaultMaxMessageBytes
				}
				got, err := frames(tc.in, limit, wrap)
				require.ErrorIs(t, err, tc.err)
				require.Equal(t, tc.want, got)
			})
		}
	}
}

// TestFrameReaderNoAllocationOfTheCount checks that a huge octet count is
// refused before anything of its size is allocated.
func TestFrameReaderNoAllocationOfTheCount(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		f := NewFrameReader(strings.NewReader("99999999999999999999 x"), DefaultMaxMessageBytes)
		_, err := f.Next()
		require.ErrorIs(t, err, ErrFraming)
	}
	runtime.ReadMemStats(&after)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(100*(frameBufferSize+4096)), "only the read buffer and the error")
}

func TestFrameReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	f := NewFrameReader(iotest.ErrReader(boom), 100)
	_, err := f.Next()
	require.ErrorIs(t, err, boom)
}
