package main

import "github.com/spf13/cobra"

// Commands registered here are part of the product's surface but not built yet.
// Each moves to its own file when it is implemented.
func init() {
	stub := func(use, short string) {
		register(func(*env) *cobra.Command {
			return &cobra.Command{Use: use, Short: short + " (not built yet)", RunE: notBuilt("livemigrate " + use)}
		})
	}
	stub("sync", "Run the sync engine for one source and destination, with a local API")
}
