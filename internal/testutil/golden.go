package testutil

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// Golden compares got, encoded as indented JSON without HTML escaping,
// with the golden file at path, or writes the file when update is set
// (the test's -update flag).
func Golden(t testing.TB, path string, got any, update bool) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(got); err != nil {
		t.Fatalf("testutil: encode %s: %v", path, err)
	}
	if update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil { //nolint:gosec // a test's golden file, read by everyone
			t.Fatalf("testutil: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path) //nolint:gosec // the test's own path
	if err != nil {
		t.Fatalf("testutil: %v (run go test -update to create the golden file)", err)
	}
	if string(want) != buf.String() {
		t.Fatalf("testutil: %s differs from the golden file (go test -update rewrites it after review):\n--- want\n%s\n--- got\n%s", path, want, buf.String())
	}
}
