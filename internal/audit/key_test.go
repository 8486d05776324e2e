package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k, err := LoadOrCreateKey(dir)
	require.NoError(t, err)
	require.True(t, k.Valid())
	st, err := os.Stat(filepath.Join(dir, KeyFileName))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	require.Equal(t, int64(KeySize), st.Size())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left")

	again, err := LoadOrCreateKey(dir)
	require.NoError(t, err)
	require.Equal(t, k.ID(), again.ID(), "the key is kept")
	require.True(t, bytes.Equal(k.b, again.b))

	other, err := LoadOrCreateKey(t.TempDir())
	require.NoError(t, err)
	require.NotEqual(t, k.ID(), other.ID(), "a new key is random")
}

func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	ids := make([]string, 8)
	errs := make([]error, 8)
	for i := range ids {
		wg.Go(func() {
			k, err := LoadOrCreateKey(dir)
			ids[i], errs[i] = k.ID(), err
		})
	}
	wg.Wait()
	for i := range ids {
		require.NoError(t, errs[i])
		require.Equal(t, ids[0], ids[i], "one key for all")
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	raw := []byte("0123456789abcdef0123456789abcdef")
	want, err := NewKey(raw)
	require.NoError(t, err)
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, mode))
		require.NoError(t, os.Chmod(p, mode)) // whatever the umask
		return p
	}
	for name, b := range map[string][]byte{
		"raw":         raw,
		"hex":         []byte(hex.EncodeToString(raw)),
		"hex newline": []byte(hex.EncodeToString(raw) + "\n"),
		"hex crlf":    []byte(hex.EncodeToString(raw) + "\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			k, err := LoadKey(write(name, b, 0o600))
			require.NoError(t, err)
			require.Equal(t, want.ID(), k.ID())
		})
	}
	t.Run("owner read only", func(t *testing.T) {
		_, err := LoadKey(write("ro", raw, 0o400))
		require.NoError(t, err)
	})
	for name, mode := range map[string]os.FileMode{"group readable": 0o640, "world readable": 0o604, "group writable": 0o620} {
		t.Run(name, func(t *testing.T) {
			p := write(name, raw, mode)
			_, err := LoadKey(p)
			require.ErrorContains(t, err, "lets group or others access it")
			require.ErrorContains(t, err, "chmod 600 "+p)
			require.NotContains(t, err.Error(), string(raw))
		})
	}
	for name, b := range map[string][]byte{
		"empty":     {},
		"short":     raw[:31],
		"long":      append(raw, 'x'),
		"bad hex":   []byte(hex.EncodeToString(raw)[:63] + "z"),
		"hex short": []byte(hex.EncodeToString(raw)[:62] + "\n\n"),
		"huge":      bytes.Repeat([]byte("a"), 4096),
	} {
		t.Run("refused/"+name, func(t *testing.T) {
			_, err := LoadKey(write(name, b, 0o600))
			require.ErrorContains(t, err, "want 32 bytes or 64 hex digits")
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := LoadKey(filepath.Join(dir, "nope"))
		require.ErrorIs(t, err, os.ErrNotExist)
	})
	t.Run("a directory", func(t *testing.T) {
		d := filepath.Join(dir, "d")
		require.NoError(t, os.Mkdir(d, 0o700))
		_, err := LoadKey(d)
		require.ErrorContains(t, err, "not a regular file")
	})
	t.Run("LoadOrCreateKey refuses a readable file", func(t *testing.T) {
		d := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(d, KeyFileName), raw, 0o600))
		require.NoError(t, os.Chmod(filepath.Join(d, KeyFileName), 0o644))
		_, err := LoadOrCreateKey(d)
		require.ErrorContains(t, err, "lets group or others access it")
	})
}

// TestKeyNeverShown: however a key is printed, logged or encoded, its
// bytes do not appear.
func TestKeyNeverShown(t *testing.T) {
	raw := []byte("0123456789abcdef0123456789abcdef")
	k, err := NewKey(raw)
	require.NoError(t, err)
	raw[0] = 'x' // NewKey copied it
	require.Equal(t, byte('0'), k.b[0])

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "key", k)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "key", k)
	js, err := json.Marshal(map[string]any{"k": k})
	require.NoError(t, err)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), logged.String(), string(js)} {
		require.NotContains(t, s, "0123456789abcdef")
		require.NotContains(t, s, hex.EncodeToString([]byte("0123456789abcdef")))
		require.Contains(t, s, k.ID())
	}

	_, err = NewKey(make([]byte, 16))
	require.Error(t, err)
	require.False(t, Key{}.Valid())
}
