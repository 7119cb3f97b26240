package cli

import (
	"errors"
	"strings"
	"testing"
)

func TestPrompterFromPipe(t *testing.T) {
	var out strings.Builder
	p := NewPrompter(strings.NewReader("yes\ns3cret\r\n"), &out)
	ok, err := p.Confirm("Drop?")
	if err != nil || !ok {
		t.Fatalf("Confirm = %t, %v; want true", ok, err)
	}
	s, err := p.Secret(t.Context(), "Password: ")
	if err != nil || s != "s3cret" {
		t.Fatalf("Secret = %q, %v; want s3cret", s, err)
	}
	if strings.Contains(out.String(), "s3cret") || strings.Contains(out.String(), "Password") {
		t.Errorf("prompt output %q shows the secret or a prompt for piped input", out.String())
	}
	if _, err := p.Secret(t.Context(), "Password: "); !errors.Is(err, ErrNoInput) {
		t.Errorf("Secret at end of input = %v, want ErrNoInput", err)
	}
	ok, err = p.Confirm("Again?")
	if err != nil || ok {
		t.Errorf("Confirm at end of input = %t, %v; want false", ok, err)
	}
	for _, answer := range []string{"n\n", "\n", "nope\n", "Y\n"} {
		ok, _ := NewPrompter(strings.NewReader(answer), &out).Confirm("?")
		if want := answer == "Y\n"; ok != want {
			t.Errorf("Confirm(%q) = %t, want %t", answer, ok, want)
		}
	}
}
