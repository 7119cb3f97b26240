package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is stamped at build time (make build: -ldflags "-X main.version=$(git describe)").
// An unstamped binary falls back to what the Go toolchain recorded.
var version = buildVersion()

// stamped is set by -ldflags "-X main.stamped=…"; empty in `go run` and `go build`.
var stamped string

// buildVersion returns the stamped version, else the module version of a
// `go install …@vX` build, else the VCS revision `go build` recorded, else "dev".
func buildVersion() string {
	if stamped != "" {
		return stamped
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return "dev"
	}
	return "dev-" + rev + dirty
}

func init() {
	register(func(e *env) *cobra.Command {
		return &cobra.Command{
			Use:   "version",
			Short: "Print the livemigrate version",
			Args:  cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				fmt.Fprintf(e.stdout, "livemigrate %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			},
		}
	})
}
