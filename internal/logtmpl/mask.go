package logtmpl

import "regexp"

// Mask replaces what its expression matches in a message by <*>.
type Mask struct {
	Name string
	Re   *regexp.Regexp
}

// DefaultMasks mask what is a parameter in nearly every log: addresses,
// hex values, ids and numbers. They run in order.
var DefaultMasks = []Mask{
	{"uuid", regexp.MustCompile(`\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b`)},
	{"ipv4", regexp.MustCompile(`\b(\d{1,3}\.){3}\d{1,3}(:\d+)?\b`)},
	{"hex", regexp.MustCompile(`\b0[xX][0-9a-fA-F]+\b`)},
	{"hexid", regexp.MustCompile(`\b[0-9a-f]*[0-9][0-9a-f]*[a-f][0-9a-f]*\b|\b[0-9a-f]*[a-f][0-9a-f]*[0-9][0-9a-f]*\b`)},
	{"number", regexp.MustCompile(`\b\d+(\.\d+)?\b`)},
}

// Apply runs masks on msg.
func Apply(masks []Mask, msg string) string {
	for _, m := range masks {
		msg = m.Re.ReplaceAllLiteralString(msg, Wildcard)
	}
	return msg
}
