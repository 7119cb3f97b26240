//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package cli

import (
	"context"
	"errors"
)

// Elsewhere stdin is never treated as a terminal: secrets are read as a line.
func isTerminal(int) bool { return false }

func readPassword(context.Context, int) ([]byte, error) {
	return nil, errors.New("reading a password from a terminal is not supported on this system")
}
