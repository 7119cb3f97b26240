package migration

import "testing"

func TestIsSystem(t *testing.T) {
	for ns, want := range map[Namespace]bool{
		{DB: "admin", Coll: "users"}:        true,
		{DB: "local", Coll: "oplog.rs"}:     true,
		{DB: "config", Coll: "settings"}:    true,
		{DB: "app", Coll: "system.views"}:   true,
		{DB: "app", Coll: "items"}:          false,
		{DB: "app", Coll: "systems"}:        false,
		{DB: "administration", Coll: "x"}:   false,
		{DB: "app", Coll: "items.system.x"}: false,
	} {
		if got := ns.IsSystem(); got != want {
			t.Errorf("%s.IsSystem() = %v, want %v", ns, got, want)
		}
	}
}
