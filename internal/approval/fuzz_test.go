package approval

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzValidToken holds the token parser to its contract: it never
// panics, and what it accepts is exactly the prefix and the canonical
// base64url of 32 bytes.
func FuzzValidToken(f *testing.F) {
	f.Add("rxa_" + strings.Repeat("A", 43))
	f.Add("rxa_" + base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")))
	f.Add("rxa_" + strings.Repeat("A", 42) + "B")
	f.Add("rxa_")
	f.Add("")
	f.Add("Bearer rxa_x")
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidToken(s) {
			return
		}
		if !strings.HasPrefix(s, TokenPrefix) {
			t.Fatalf("accepted %q without the prefix", s)
		}
		b, err := base64.RawURLEncoding.DecodeString(s[len(TokenPrefix):])
		if err != nil || len(b) != tokenBytes {
			t.Fatalf("accepted %q: %v, %d bytes", s, err, len(b))
		}
		if again := TokenPrefix + base64.RawURLEncoding.EncodeToString(b); again != s {
			t.Fatalf("accepted a non-canonical %q (canonical %q)", s, again)
		}
	})
}
