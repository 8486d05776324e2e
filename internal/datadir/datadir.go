// Package datadir guards a reflex data directory: one server at a time.
//
// Lock takes an exclusive, advisory lock (flock) on <dir>/reflex.lock and
// writes the holder's pid, host and start time into it, so that a second
// server on the same directory fails at once and names the first. The lock
// belongs to the open file: it goes with the process, also on kill -9, so a
// stale lock file never blocks a restart.
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// FileName is the name of the lock file in the data directory.
const FileName = "reflex.lock"

// ErrLocked means another process holds the data directory's lock. Lock's
// error wraps it and names the holder.
var ErrLocked = errors.New("datadir: data directory in use")

// Lock is a held data directory lock. Release it with Unlock.
type Lock struct {
	path string
	once sync.Once
	f    *os.File
	err  error
}

// Acquire creates dir if needed and locks it for this process. now stamps the
// start time written into the lock file (nil: time.Now). If another process
// (or another Lock in this process) holds it, the error wraps ErrLocked and
// says who holds it, from what the holder wrote.
func Acquire(dir string, now func() time.Time) (*Lock, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o750); err != nil { //nolint:gosec // the data dir is the operator's own configuration
		return nil, fmt.Errorf("datadir: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640) //nolint:gosec // the path is the operator's data dir
	if err != nil {
		return nil, fmt.Errorf("datadir: open lock file: %w", err)
	}
	if err := lockFile(f); err != nil {
		holder := readHolder(f)
		_ = f.Close()
		if errors.Is(err, errWouldBlock) {
			abs, _ := filepath.Abs(dir)
			return nil, fmt.Errorf("%w: %s is locked by another reflex server (%s); stop it or choose another --data-dir", ErrLocked, abs, holder)
		}
		return nil, fmt.Errorf("datadir: lock %s: %w", path, err)
	}
	host, _ := os.Hostname()
	info := fmt.Sprintf("pid %d on %s, started %s\n", os.Getpid(), host, now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(info), 0)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("datadir: write lock file: %w", err)
		}
	} else {
		_ = f.Close()
		return nil, fmt.Errorf("datadir: write lock file: %w", err)
	}
	return &Lock{path: path, f: f}, nil
}

// Path is the lock file's path.
func (l *Lock) Path() string { return l.path }

// Unlock empties the lock file and releases the lock. It is idempotent.
// The file stays (removing it would let two processes each lock a
// different inode).
func (l *Lock) Unlock() error {
	l.once.Do(func() {
		_ = l.f.Truncate(0)
		l.err = errors.Join(unlockFile(l.f), l.f.Close())
		if l.err != nil {
			l.err = fmt.Errorf("datadir: unlock: %w", l.err)
		}
	})
	return l.err
}

func readHolder(f *os.File) string {
	buf := make([]byte, 256)
	n, _ := f.ReadAt(buf, 0)
	s := strings.TrimSpace(string(buf[:n]))
	if s == "" {
		return "holder unknown"
	}
	return s
}
