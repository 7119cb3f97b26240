package mdb

import (
	"errors"
	"testing"
)

// The hello facts alone: a destination that is a member of the source, or
// the same replica set with overlapping members, is the same deployment.
func TestSameByHello(t *testing.T) {
	rs := func(name, me string, hosts ...string) ServerInfo {
		return ServerInfo{Topology: ReplicaSet, SetName: name, Me: me, Hosts: hosts}
	}
	for _, c := range []struct {
		name     string
		src, dst ServerInfo
		same     bool
	}{
		{"secondary of the source", rs("rs0", "a:1", "a:1", "b:1"), rs("rs0", "b:1", "a:1", "b:1"), true},
		{"source is a member of the destination", ServerInfo{Topology: Standalone, Me: "b:1"}, rs("rs0", "a:1", "a:1", "b:1"), true},
		{"member without a set name", rs("rs0", "a:1", "a:1", "b:1"), ServerInfo{Topology: Standalone, Me: "b:1"}, true},
		{"same set, overlapping members", rs("rs0", "", "a:1", "b:1"), rs("rs0", "", "b:1", "c:1"), true},
		{"same set name, other members", rs("rs0", "", "a:1"), rs("rs0", "", "c:1"), false},
		{"other set", rs("rs0", "a:1", "a:1"), rs("rs1", "c:1", "c:1"), false},
		{"two standalone servers", ServerInfo{Topology: Standalone}, ServerInfo{Topology: Standalone}, false},
	} {
		err := sameByHello(c.src, c.dst)
		if got := errors.Is(err, ErrSameDeployment); got != c.same {
			t.Errorf("%s: %v, want same=%v", c.name, err, c.same)
		}
	}
}
