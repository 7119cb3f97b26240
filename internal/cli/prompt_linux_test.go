package cli

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal pair: what the operator types goes into
// master; the program reads slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func echoOn(t *testing.T, f *os.File) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), ioctlReadTermios)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// TestSecretOnTerminal reads a password from a real pseudo-terminal and
// checks the terminal did not echo it and got its echo back afterwards.
func TestSecretOnTerminal(t *testing.T) {
	master, slave := openPTY(t)
	if !isTerminal(int(slave.Fd())) {
		t.Fatal("the pty slave is not a terminal")
	}
	var prompts strings.Builder
	p := NewPrompter(slave, &prompts)
	type result struct {
		s   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := p.Secret(t.Context(), "Password: ")
		done <- result{s, err}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for echoOn(t, slave) {
		if time.Now().After(deadline) {
			t.Fatal("echo still on after 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := master.WriteString("hunter2\n"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.s != "hunter2" {
		t.Fatalf("Secret = %q, %v; want hunter2", r.s, r.err)
	}
	if !echoOn(t, slave) {
		t.Error("echo not restored after the password was read")
	}
	if prompts.String() != "Password: \n" {
		t.Errorf("prompt output = %q", prompts.String())
	}
	// Everything the terminal showed, up to a marker the program writes.
	if _, err := slave.WriteString("END\n"); err != nil {
		t.Fatal(err)
	}
	var shown bytes.Buffer
	buf := make([]byte, 256)
	for !bytes.Contains(shown.Bytes(), []byte("END")) {
		n, err := master.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		shown.Write(buf[:n])
	}
	if bytes.Contains(shown.Bytes(), []byte("hunter2")) {
		t.Errorf("the terminal echoed the password: %q", shown.String())
	}
}
