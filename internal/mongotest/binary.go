package mongotest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// FerretDBVersion is the FerretDB release every server runs.
const FerretDBVersion = "v1.24.2"

// Binary returns the path of a FerretDB server binary, building it once per
// machine into the user cache directory (about 60 s cold, instant after).
//
// The module's cmd/ferretdb cannot be built with `go install` because the
// module zip lacks build/version/version.txt, so Binary copies the module
// source, writes that file and builds the copy. Concurrent callers (parallel
// test packages) serialize on a file lock.
func Binary(ctx context.Context) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "livemigrate", "ferretdb-"+FerretDBVersion)
	bin := filepath.Join(dir, "ferretdb")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create ferretdb cache dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("open ferretdb build lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock ferretdb build: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // built by another process while we waited
	}

	out, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", "github.com/FerretDB/FerretDB@"+FerretDBVersion).Output()
	if err != nil {
		return "", fmt.Errorf("download FerretDB %s module: %w", FerretDBVersion, cmdErr(err))
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("download FerretDB %s module: %s (%v)", FerretDBVersion, mod.Error, err)
	}
	src := filepath.Join(dir, "src")
	if err := os.RemoveAll(src); err != nil {
		return "", err
	}
	if out, err := exec.CommandContext(ctx, "cp", "-r", mod.Dir, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("copy FerretDB source: %v: %s", err, out)
	}
	if out, err := exec.CommandContext(ctx, "chmod", "-R", "u+w", src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("make FerretDB source writable: %v: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(src, "build", "version", "version.txt"), []byte(FerretDBVersion+"\n"), 0o644); err != nil {
		return "", err
	}
	tmp := bin + ".tmp"
	build := exec.CommandContext(ctx, "go", "build", "-o", tmp, "./cmd/ferretdb")
	build.Dir = src
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build FerretDB %s: %v: %s", FerretDBVersion, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	_ = os.RemoveAll(src)
	return bin, nil
}

func cmdErr(err error) error {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return fmt.Errorf("%v: %s", err, ee.Stderr)
	}
	return err
}
