package migration

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// FormatTS formats an oplog or cluster time the way the MongoDB shell does,
// Timestamp(seconds, increment): the one format of positions in logs,
// errors and output.
func FormatTS(ts bson.Timestamp) string { return fmt.Sprintf("Timestamp(%d, %d)", ts.T, ts.I) }

// FormatBytes formats a size in binary units with one decimal ("512 B",
// "1.5 KiB", "3.8 MiB", up to EiB): the one format of sizes in output and
// messages.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
