package mdb

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Process identifies the server process a client talks to: a restart (or,
// on a replica set, another primary) gives another Process.
type Process struct {
	Host    string    `bson:"host"`
	PID     int64     `bson:"pid"`
	Started time.Time `bson:"started"` // localTime − uptime
}

// ReadProcess reads serverStatus's host, pid and uptime.
func ReadProcess(ctx context.Context, c *mongo.Client) (Process, error) {
	var r struct {
		Host         string        `bson:"host"`
		PID          int64         `bson:"pid"`
		UptimeMillis int64         `bson:"uptimeMillis"`
		LocalTime    bson.DateTime `bson:"localTime"`
	}
	cmd := bson.D{{Key: "serverStatus", Value: 1}, {Key: "metrics", Value: 0}, {Key: "catalogStats", Value: 0}}
	if err := c.Database("admin").RunCommand(ctx, cmd).Decode(&r); err != nil {
		return Process{}, fmt.Errorf("serverStatus: %w", err)
	}
	return Process{Host: r.Host, PID: r.PID, Started: r.LocalTime.Time().Add(-time.Duration(r.UptimeMillis) * time.Millisecond).UTC()}, nil
}

// SameAs reports whether p and q are one process: same host and pid, and
// start times within 5 s (uptime and the clock are read at slightly
// different moments; a restarted container often reuses its pid).
func (p Process) SameAs(q Process) bool {
	d := p.Started.Sub(q.Started)
	return p.Host == q.Host && p.PID == q.PID && d < 5*time.Second && d > -5*time.Second
}

func (p Process) String() string {
	return fmt.Sprintf("%s pid %d started %s", p.Host, p.PID, p.Started.Format(time.RFC3339))
}
