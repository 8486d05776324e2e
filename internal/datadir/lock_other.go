//go:build !unix

package datadir

import (
	"errors"
	"os"
)

// On systems without flock the directory is not guarded.
var errWouldBlock = errors.New("datadir: would block")

func lockFile(*os.File) error   { return nil }
func unlockFile(*os.File) error { return nil }
