package mdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// ErrSameDeployment is wrapped by the error of ProveDistinct when source and
// destination are one deployment (or the destination a member of the source).
var ErrSameDeployment = errors.New("the source and the destination are the same deployment")

// ProbeCollectionPrefix starts the name of the collection ProveDistinct
// writes its nonce into (one per probe, in the metadata database).
const ProbeCollectionPrefix = "identity_probe_"

// ProveDistinct proves that src and dst are different deployments before
// anything is written to dst. The decisive proof works on every server: a
// nonce document is written into a fresh collection of dst's metadata
// database and looked for through src (read from the primary); found, the
// two connection strings reach one deployment. The collection is dropped
// afterwards, and the metadata database too when the probe created it, so
// the destination is left as it was. The hello facts back it: the same
// replica-set name with overlapping members, or a destination whose `me` is
// a member of the source, is refused too. Nothing is written to src unless
// it is dst. A refusal wraps ErrSameDeployment and says what to do.
func ProveDistinct(ctx context.Context, src, dst *mongo.Client, srcInfo, dstInfo ServerInfo, metadataDB string) error {
	if err := sameByHello(srcInfo, dstInfo); err != nil {
		return err
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("identity probe nonce: %w", err)
	}
	nonce := hex.EncodeToString(b[:])
	coll := ProbeCollectionPrefix + nonce
	ddb := dst.Database(metadataDB, options.Database().SetWriteConcern(writeconcern.Majority()))
	before, err := ddb.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("identity probe: list collections of %s on the destination: %w", metadataDB, err)
	}
	if _, err := ddb.Collection(coll).InsertOne(ctx, bson.D{{Key: "_id", Value: nonce}, {Key: "at", Value: time.Now().UTC()}}); err != nil {
		return fmt.Errorf("identity probe: write to %s.%s on the destination (the destination must be writable): %w", metadataDB, coll, err)
	}
	found, findErr := func() (bool, error) {
		sdb := src.Database(metadataDB, options.Database().SetReadPreference(readpref.Primary()))
		err := sdb.Collection(coll).FindOne(ctx, bson.D{{Key: "_id", Value: nonce}}).Err()
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("identity probe: read %s.%s on the source: %w", metadataDB, coll, err)
		}
		return true, nil
	}()
	cleanErr := cleanupProbe(context.WithoutCancel(ctx), ddb, coll, len(before) == 0)
	switch {
	case findErr != nil:
		return errors.Join(findErr, cleanErr)
	case found:
		return fmt.Errorf("%w: a probe document written through the destination's connection string was read back through the source's "+
			"(one server reached by two addresses, such as 127.0.0.1 and localhost): migrating would drop or overwrite the source's data; "+
			"give the connection string of the other deployment as the destination", ErrSameDeployment)
	}
	return cleanErr
}

// cleanupProbe drops the probe collection and, when the probe created the
// metadata database and nothing else has written to it since, the database.
func cleanupProbe(ctx context.Context, db *mongo.Database, coll string, created bool) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := db.Collection(coll).Drop(ctx); err != nil {
		return fmt.Errorf("identity probe: drop %s.%s on the destination: %w", db.Name(), coll, err)
	}
	if !created {
		return nil
	}
	left, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil || len(left) > 0 {
		return nil // someone else uses the database now: keep it
	}
	if err := db.Drop(ctx); err != nil {
		return fmt.Errorf("identity probe: drop the empty database %s on the destination: %w", db.Name(), err)
	}
	return nil
}

// sameByHello refuses what hello alone proves to be one deployment.
func sameByHello(src, dst ServerInfo) error {
	if dst.Me != "" && slices.Contains(src.Hosts, dst.Me) {
		return fmt.Errorf("%w: the destination is %s, a member of the source's replica set %s: give the connection string of another deployment as the destination",
			ErrSameDeployment, dst.Me, src.SetName)
	}
	if src.Me != "" && slices.Contains(dst.Hosts, src.Me) {
		return fmt.Errorf("%w: the source is %s, a member of the destination's replica set %s: give the connection string of another deployment as the destination",
			ErrSameDeployment, src.Me, dst.SetName)
	}
	if src.SetName == "" || src.SetName != dst.SetName {
		return nil
	}
	for _, h := range dst.Hosts {
		if slices.Contains(src.Hosts, h) {
			return fmt.Errorf("%w: both are replica set %s with member %s: give the connection string of another deployment as the destination",
				ErrSameDeployment, src.SetName, h)
		}
	}
	return nil
}
