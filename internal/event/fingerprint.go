package event

import (
	"hash/fnv"
	"strconv"
)

// Fingerprint identifies repeats of one event: the same source, host,
// service, event type and severity, and the same title once digits are
// masked, so that "CPU at 97%" and "CPU at 98%" are one event seen twice.
func Fingerprint(e *Event) string {
	h := fnv.New64a()
	for _, s := range []string{e.SourceSystem, e.SourceHost, e.SourceService, e.EventType, string(e.Severity)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(maskDigits(e.Title))
	if a := e.Alert; a != nil {
		// An alert's firing and its resolution are different events, and
		// so is each episode of it (a firing that starts again after a
		// resolution is a new event, not a repeat of the resolved one):
		// repeats are re-sends of one episode.
		// The key too: two alerts of one host and type whose titles differ
		// in digits only (cpu0, cpu1) are two alerts.
		h.Write([]byte{0})
		h.Write([]byte(a.Key))
		h.Write([]byte{0})
		h.Write([]byte(a.Status))
		if a.StartsAt != nil {
			h.Write([]byte{0})
			h.Write(strconv.AppendInt(nil, a.StartsAt.UnixMicro(), 10))
		}
	}
	return strconv.FormatUint(h.Sum64(), 16)
}

// maskDigits replaces each run of digits (with '.' or ',' inside it) by '#'.
func maskDigits(s string) []byte {
	out := make([]byte, 0, len(s))
	inNum := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		isDigit := c >= '0' && c <= '9'
		switch {
		case isDigit && !inNum:
			out = append(out, '#')
			inNum = true
		case isDigit, inNum && (c == '.' || c == ',') && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
		default:
			inNum = false
			out = append(out, c)
		}
	}
	return out
}
