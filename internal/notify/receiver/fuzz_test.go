package receiver

import (
	"errors"
	"testing"
	"time"
)

// FuzzVerify feeds Verify arbitrary headers and bodies: it answers nil or
// one of its three errors, never panics, and accepts what Sign produced.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1700000000, 0)
	body := []byte(`{"receiver":"ops","status":"firing","group_key":"g","alerts":[]}`)
	f.Add(Sign("fuzz-secret", now, body), body)
	f.Add("t=1700000000,v1=00", body)
	f.Add("t=,v1=", []byte{})
	f.Add(",,,=,==", []byte("x"))
	f.Add("v1=zz,t=-5,t=6", []byte(nil))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := Verify("fuzz-secret", header, body, now, time.Minute)
		if err != nil && !errors.Is(err, ErrSignatureMalformed) && !errors.Is(err, ErrSignatureMismatch) && !errors.Is(err, ErrSignatureExpired) {
			t.Fatalf("Verify(%q): an error of no kind: %v", header, err)
		}
		if err == nil {
			// Only the secret's holder can have made it.
			if Verify("other-secret", header, body, now, time.Minute) == nil {
				t.Fatalf("Verify(%q) accepts two secrets", header)
			}
		}
		if err := Verify("fuzz-secret", Sign("fuzz-secret", now, body), body, now, time.Minute); err != nil {
			t.Fatalf("Verify rejects Sign's header: %v", err)
		}
	})
}
