package e2e

import (
	"strings"
	"testing"
	"time"
)

func TestDemo(t *testing.T) {
	t.Parallel()
	out, err := runCLI(t, 3*time.Minute, "demo", "--docs", "3000", "--rate", "20", "--catch-up", "10s")
	if err != nil {
		t.Fatalf("livemigrate demo: %v\n%s", err, out)
	}
	for _, want := range []string{"Validation SUCCESS", "Migration complete", "collections copied  9", "verification        PASSED"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
