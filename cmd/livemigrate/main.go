// Command livemigrate moves a live MongoDB deployment into another one with
// minutes of downtime. One binary holds every role: control plane (server),
// migration host (agent), standalone engine (sync), verifier and CLI.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
