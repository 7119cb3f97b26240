// Command prepare builds the FerretDB server binary the tests and the demo
// run (once per machine; see mongotest.Binary) and prints its path.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/livemigrate/livemigrate/internal/mongotest"
)

func main() {
	bin, err := mongotest.Binary(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "prepare FerretDB:", err)
		os.Exit(1)
	}
	fmt.Println(bin)
}
