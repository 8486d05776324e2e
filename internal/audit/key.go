package audit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KeySize is the size of an audit key in bytes.
const KeySize = 32

// KeyFileName is the name of the key file that LoadOrCreateKey keeps in
// the data directory.
const KeyFileName = "audit.key"

// maxKeyFile bounds what LoadKey reads: 64 hex digits and a line end.
const maxKeyFile = 2*KeySize + 2

// Key is the secret that authenticates the records: the HMAC-SHA256 key.
// Its bytes never leave this package: printed, logged or encoded it shows
// only its ID.
type Key struct {
	b  []byte
	id string
}

// NewKey makes a key of b, which must be KeySize bytes. b is copied.
func NewKey(b []byte) (Key, error) {
	if len(b) != KeySize {
		return Key{}, fmt.Errorf("audit: key: %d bytes, want %d", len(b), KeySize)
	}
	k := Key{b: append([]byte(nil), b...)}
	m := hmac.New(sha256.New, k.b)
	m.Write([]byte("reflex audit key id"))
	k.id = hex.EncodeToString(m.Sum(nil)[:8])
	return k, nil
}

// ID names the key without revealing it: 16 hex digits derived from it
// by HMAC. Every record stores the ID of the key that made its hash.
func (k Key) ID() string { return k.id }

// Valid reports whether k holds a key (the zero Key does not).
func (k Key) Valid() bool { return len(k.b) == KeySize }

// String shows the key's ID only.
func (k Key) String() string { return "audit key " + k.id }

// GoString shows the key's ID only.
func (k Key) GoString() string { return "audit.Key{id: " + k.id + "}" }

// LogValue shows the key's ID only.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.id) }

// MarshalText shows the key's ID only, so that encoding a Key by mistake
// does not reveal it.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.id), nil }

// sum is the hash of r: HMAC-SHA256(k, r.Canonical()) in lower-case hex.
func (k Key) sum(r Record) string {
	m := hmac.New(sha256.New, k.b)
	m.Write(r.Canonical())
	return hex.EncodeToString(m.Sum(nil))
}

// authentic reports whether r.Hash is the hash of r under k (in constant
// time).
func (k Key) authentic(r Record) bool {
	return hmac.Equal([]byte(k.sum(r)), []byte(r.Hash))
}

// LoadKey reads the key in the file at path: exactly 32 bytes, or 64 hex
// digits with an optional line end (as `openssl rand -hex 32` writes).
// On Unix the file must not be readable or writable by group or others
// (mode 0600 or stricter): such a file is refused with an error saying
// so. The key itself never appears in an error.
func LoadKey(path string) (Key, error) {
	f, err := os.Open(path) //nolint:gosec // the key file is the operator's configuration
	if err != nil {
		return Key{}, fmt.Errorf("audit: key file: %w", err)
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return Key{}, fmt.Errorf("audit: key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Key{}, fmt.Errorf("audit: key file %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return Key{}, fmt.Errorf("audit: key file %s: mode %04o lets group or others access it; make it readable by its owner only (chmod 600 %s)",
			path, perm, path)
	}
	b := make([]byte, maxKeyFile+1)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return Key{}, fmt.Errorf("audit: key file %s: %w", path, err)
	}
	b = b[:n]
	switch {
	case n == KeySize:
		return NewKey(b)
	case n >= 2*KeySize && n <= maxKeyFile:
		text := strings.TrimRight(string(b), "\r\n")
		if len(text) == 2*KeySize {
			raw, err := hex.DecodeString(text)
			if err == nil {
				return NewKey(raw)
			}
		}
	}
	return Key{}, fmt.Errorf("audit: key file %s: want %d bytes or %d hex digits, found %d bytes", path, KeySize, 2*KeySize, n)
}

// LoadOrCreateKey returns the key in <dataDir>/audit.key, creating the
// file (mode 0600, 32 bytes from crypto/rand) when it does not exist.
// The file is written under a temporary name and linked into place, so
// that a crash leaves no partial key and two processes starting together
// end up with the same key. An existing file is read as LoadKey does.
func LoadOrCreateKey(dataDir string) (Key, error) {
	path := filepath.Join(dataDir, KeyFileName)
	k, err := LoadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return Key{}, fmt.Errorf("audit: create key: %w", err)
	}
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return Key{}, fmt.Errorf("audit: create key: %w", err)
	}
	tmp, err := os.CreateTemp(dataDir, KeyFileName+".tmp-*")
	if err != nil {
		return Key{}, fmt.Errorf("audit: create key: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return Key{}, fmt.Errorf("audit: create key: %w", err)
	}
	_, werr := tmp.Write(b)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return Key{}, fmt.Errorf("audit: create key: %w", err)
	}
	// Link never replaces an existing file: if another process created
	// the key meanwhile, its key wins and is read below.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return Key{}, fmt.Errorf("audit: create key: %w", err)
	}
	syncDir(dataDir)
	return LoadKey(path)
}

// syncDir makes the directory entry of a new file durable, where the
// system allows it.
func syncDir(dir string) {
	d, err := os.Open(dir) //nolint:gosec // the operator's data dir
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
