//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package cli

import (
	"context"

	"golang.org/x/sys/unix"
)

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, ioctlReadTermios)
	return err == nil
}

// readPassword reads a line from the terminal fd with echo off and restores
// the terminal state afterwards, also when ctx ends (Ctrl-C) first.
func readPassword(ctx context.Context, fd int) ([]byte, error) {
	old, err := unix.IoctlGetTermios(fd, ioctlReadTermios)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Lflag &^= unix.ECHO
	raw.Lflag |= unix.ICANON | unix.ISIG
	raw.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, ioctlWriteTermios, &raw); err != nil {
		return nil, err
	}
	defer func() { _ = unix.IoctlSetTermios(fd, ioctlWriteTermios, old) }() // best effort: restore the terminal
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		// This goroutine ends when the read returns; on Ctrl-C the process exits.
		var line []byte
		buf := make([]byte, 1)
		for {
			n, err := unix.Read(fd, buf)
			if n > 0 {
				if buf[0] == '\n' {
					break
				}
				line = append(line, buf[0])
			}
			if err == unix.EINTR {
				continue
			}
			if err != nil || n == 0 {
				done <- result{line, err}
				return
			}
		}
		done <- result{line, nil}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
