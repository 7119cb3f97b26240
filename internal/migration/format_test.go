package migration

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 4_000_000: "3.8 MiB",
		5 << 30: "5.0 GiB", 3 << 40: "3.0 TiB", 1 << 62: "4.0 EiB",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	p := Position{TS: bson.Timestamp{T: 1700000000, I: 7}}
	if got, want := p.String(), "Timestamp(1700000000, 7)"; got != want || p.LogValue().String() != want {
		t.Errorf("Position = %q (log %q), want %q", got, p.LogValue().String(), want)
	}
}
