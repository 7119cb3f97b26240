package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrNoInput is returned when a prompt got an empty answer or end of input.
var ErrNoInput = errors.New("no input")

// Prompter asks the operator questions: prompts go to out (stderr, so that
// stdout stays clean for -o json), answers come from in. On a terminal,
// secrets are read with echo off; otherwise one line is read from in, so
// scripts can pipe a password in (`echo "$PW" | livemigrate lm create …`).
// One Prompter must be used for all questions of a command: it buffers in.
type Prompter struct {
	in  io.Reader
	out io.Writer
	br  *bufio.Reader
}

// NewPrompter returns a Prompter reading in and writing prompts to out.
func NewPrompter(in io.Reader, out io.Writer) *Prompter {
	return &Prompter{in: in, out: out}
}

func (p *Prompter) terminal() (int, bool) {
	f, ok := p.in.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, isTerminal(fd)
}

func (p *Prompter) line() (string, error) {
	if p.br == nil {
		p.br = bufio.NewReader(p.in)
	}
	s, err := p.br.ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || s == "") {
		if errors.Is(err, io.EOF) {
			return "", ErrNoInput
		}
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// Secret asks for a secret. On a terminal it prints prompt and reads with
// echo off; otherwise it reads one line without printing anything. An empty
// answer is ErrNoInput. The secret is never echoed or logged.
func (p *Prompter) Secret(ctx context.Context, prompt string) (string, error) {
	var s string
	if fd, ok := p.terminal(); ok {
		fmt.Fprint(p.out, prompt)
		b, err := readPassword(ctx, fd)
		fmt.Fprintln(p.out)
		if err != nil {
			return "", err
		}
		s = strings.TrimRight(string(b), "\r\n")
	} else {
		var err error
		if s, err = p.line(); err != nil {
			return "", err
		}
	}
	if s == "" {
		return "", ErrNoInput
	}
	return s, nil
}

// Confirm asks a yes/no question (default no) and reports whether the answer
// was y or yes. End of input counts as no.
func (p *Prompter) Confirm(question string) (bool, error) {
	fmt.Fprintf(p.out, "%s [y/N]: ", question)
	s, err := p.line()
	if _, ok := p.terminal(); !ok {
		fmt.Fprintln(p.out)
	}
	if errors.Is(err, ErrNoInput) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "y", "yes":
		return true, nil
	default:
		return false, nil
	}
}

// IsTerminal reports whether w is a terminal (progress is then redrawn in place).
func IsTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(int(f.Fd()))
}
