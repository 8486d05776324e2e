package event

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// AlertKey joins the parts of an alert's identity (a rule name, label
// pairs, a check name and its target) into an Alert.Key: the parts joined
// by "/" when that fits MaxAlertKeyLen, else "sha256:" and the hex digest
// of the parts, so that one identity always maps to one key.
func AlertKey(parts ...string) string {
	k := strings.Join(parts, "/")
	if len(k) <= MaxAlertKeyLen {
		return k
	}
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Resolves reports whether e is the resolution of an alert.
func (e *Event) Resolves() bool { return e.Alert != nil && e.Alert.Status == AlertResolved }
