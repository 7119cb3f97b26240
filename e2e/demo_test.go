package e2e

import (
	"strings"
	"testing"
	"time"
)

func TestDemo(t *testing.T) {
	t.Parallel()
	// --verify-wait bounds the wait for background coverage before the cutover.
	out, err := runCLI(t, 4*time.Minute, "demo", "--docs", "3000", "--rate", "20", "--catch-up", "10s", "--verify-wait", "1m")
	if err != nil {
		t.Fatalf("livemigrate demo: %v\n%s", err, out)
	}
	for _, want := range []string{"Validation SUCCESS", "Verified in background:", "Migration complete", "collections copied  9", "verification        PASSED",
		"    commit point  ", "    drain  ", "    index restore  ", "    other  ", "  coverage            complete"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
