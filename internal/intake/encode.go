package intake

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/event"
)

// envelopeOverhead is an upper bound on an envelope's bytes besides its
// items.
const envelopeOverhead = 160

// itemSize is an upper bound on the encoded size of it inside an envelope
// (a string may grow by escaping; 6 bytes per byte at worst, but sources and
// severities are short).
func itemSize(it *Item) int {
	return len(it.Data) + 2*len(it.SourceSystem) + 2*len(it.Severity) + 48
}

// encode writes the envelope of items as JSON, the same document
// json.Marshal would make of an Envelope, without re-encoding each item's
// Data (it is already JSON; Submit checked it). Both paths to the log
// (Intake.Submit and the Submitter) encode with it.
func encode(baseID int64, receivedAt time.Time, src event.SourceType, items []Item) []byte {
	n := envelopeOverhead + len(src)
	for i := range items {
		n += itemSize(&items[i])
	}
	b := make([]byte, 0, n)
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, EnvelopeVersion, 10)
	b = append(b, `,"base_id":`...)
	b = strconv.AppendInt(b, baseID, 10)
	b = append(b, `,"received_at":"`...)
	b = receivedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","source_type":`...)
	b = appendString(b, string(src))
	b = append(b, `,"events":[`...)
	for i := range items {
		if i > 0 {
			b = append(b, ',')
		}
		it := &items[i]
		b = append(b, `{"source":`...)
		b = appendString(b, it.SourceSystem)
		b = append(b, `,"severity":`...)
		b = appendString(b, string(it.Severity))
		b = append(b, `,"data":`...)
		if len(it.Data) == 0 {
			b = append(b, "null"...)
		} else {
			b = append(b, it.Data...)
		}
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
