package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/livemigrate/livemigrate/internal/mongotest"
)

func init() {
	register(func(e *env) *cobra.Command {
		var keep bool
		cmd := &cobra.Command{
			Use:   "demo",
			Short: "Run a demonstration on local servers (today: the test servers and a live workload)",
			Args:  cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return runHarnessDemo(c.Context(), e, keep)
			},
		}
		cmd.Flags().BoolVar(&keep, "keep", false, "leave the servers running until Ctrl-C")
		return cmd
	})
}

// runHarnessDemo starts a source (replica set with oplog) and a destination
// and writes a live workload to the source.
func runHarnessDemo(ctx context.Context, e *env, keep bool) error {
	dir, err := os.MkdirTemp("", "livemigrate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintln(e.stdout, "Preparing the FerretDB server binary (built once per machine)…")
	src, err := mongotest.Start(ctx, mongotest.Options{Dir: dir + "/source", ReplSet: "rs0", Oplog: mongotest.DefaultOplog})
	if err != nil {
		return fmt.Errorf("start demo source: %w", err)
	}
	defer src.Close()
	dst, err := mongotest.Start(ctx, mongotest.Options{Dir: dir + "/destination"})
	if err != nil {
		return fmt.Errorf("start demo destination: %w", err)
	}
	defer dst.Close()
	fmt.Fprintf(e.stdout, "source (replica set rs0 with oplog): %s\ndestination: %s\n", src.URI(), dst.URI())
	c, err := src.Connect(ctx)
	if err != nil {
		return err
	}
	defer c.Disconnect(context.Background())
	w := mongotest.StartWorkload(ctx, c, mongotest.WorkloadOptions{Namespaces: []string{"shop.orders", "shop.customers"}, Writers: 2, Rate: 200})
	wait := 5 * time.Second
	if keep {
		fmt.Fprintln(e.stdout, "Writing a live workload to the source; Ctrl-C to stop.")
		<-ctx.Done()
	} else {
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	records, err := w.Stop()
	if err != nil && ctx.Err() == nil {
		return err
	}
	fmt.Fprintf(e.stdout, "workload acknowledged %d writes: %v\n", len(records), w.Counts())
	return nil
}
