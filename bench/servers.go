package main

import (
	"context"
	"os"
	"path/filepath"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// servers is the source and destination one benchmark runs on, with a
// client for each, in a temporary directory.
type servers struct {
	dir      string
	src, dst *mongotest.Server
	sc, dc   *mongo.Client
}

// startServers starts a source with srcOpts and a destination on backend
// (Dir is filled in); Close stops both and removes their data.
func startServers(ctx context.Context, name string, srcOpts mongotest.Options, backend mongotest.Backend) (s *servers, err error) {
	s = &servers{}
	if s.dir, err = os.MkdirTemp("", "livemigrate-bench-"+name+"-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	srcOpts.Dir, srcOpts.Backend = filepath.Join(s.dir, "src"), backend
	if s.src, err = mongotest.Start(ctx, srcOpts); err != nil {
		return nil, err
	}
	if s.dst, err = mongotest.Start(ctx, mongotest.Options{Dir: filepath.Join(s.dir, "dst"), Backend: backend}); err != nil {
		return nil, err
	}
	if s.sc, err = s.src.Connect(ctx); err != nil {
		return nil, err
	}
	if s.dc, err = s.dst.Connect(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Close disconnects, stops both servers and removes their data.
func (s *servers) Close() {
	for _, c := range []*mongo.Client{s.sc, s.dc} {
		if c != nil {
			_ = c.Disconnect(context.Background())
		}
	}
	for _, srv := range []*mongotest.Server{s.src, s.dst} {
		if srv != nil {
			srv.Close()
		}
	}
	_ = os.RemoveAll(s.dir)
}
