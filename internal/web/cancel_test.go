package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/controlplane"
)

// TestCancelAndLostHostValidationInBrowser cancels a running migration from
// the walk-through (the dialog says what it leaves behind; "Keep migrating"
// keeps it), reads the cancelled report, then validates while the migration
// host is lost: the wizard says the host is lost at once instead of waiting.
func TestCancelAndLostHostValidationInBrowser(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cp := startControlPlane(t, controlplane.Timing{HeartbeatInterval: 2 * time.Second, ProgressInterval: 500 * time.Millisecond})
	b := newBrowser(t, cp.url, 1280, 900)
	h := startHostedMigration(t, cp)
	proj, m, stop := h.proj, h.m, h.stop

	b.open("/")
	b.signIn("owner", "owner-password")
	b.do("signed in", waitText("h1", "Organizations"))
	b.open("/groups/" + proj.ID + "/migrations/" + m.ID)
	b.do("walk-through", waitText("h1", "Migrating to dest-cluster"), chromedp.WaitVisible(chromedp.CSS(`#open-cancel`)))
	// The default mode verifies while changes apply: the one collection is
	// soon covered, and the page says so.
	b.do("verified in background", waitText(`#background-verification`, "1/1 namespaces"))
	b.screenshot("verified-in-background")
	b.do("cancel dialog", click(`#open-cancel`), chromedp.WaitVisible(chromedp.CSS(`#cancel-dialog`)))
	if d := b.text(`#cancel-dialog`); !containsAll(d, "keeps the data copied so far", "__livemigrate", "Clear existing data on the destination") {
		t.Errorf("cancel dialog %q does not say what it leaves behind", d)
	}
	b.screenshot("cancel-dialog")
	b.do("keep migrating", waitJS(`(document.querySelector('#cancel-dialog button[value=keep]').click(), true)`),
		chromedp.WaitNotVisible(chromedp.CSS(`#cancel-dialog`)))
	time.Sleep(time.Second)
	if got, err := cp.admin.Migration(ctx, proj.ID, m.ID); err != nil || got.Status == api.MigrationFailed {
		t.Fatalf("after Keep migrating the migration is %v (%v)", got.Status, err)
	}
	b.do("cancel it", click(`#open-cancel`), click(`#confirm-cancel`),
		waitText(`#migration-status`, "FAILED"), waitText("h1", "Migration to dest-cluster failed"))
	if js[bool](b, `document.querySelector('#open-cancel').offsetParent !== null || document.querySelector('#open-cutover').offsetParent !== null`) {
		t.Error("Cancel or Cut over still shows on a cancelled migration")
	}
	b.screenshot("cancelled")
	b.do("report", click(`#report-link`), waitText("#outcome", "cancelled"))
	if o := b.text(`#outcome`); !containsAll(o, "cancelled by owner", "__livemigrate") {
		t.Errorf("cancelled report outcome %q", o)
	}
	b.screenshot("cancelled-report")

	// Validation while the host is lost: said at once, not after 3 minutes.
	stop()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ags, err := cp.admin.Agents(ctx, cp.orgID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ags) == 1 && ags[0].Lost {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stopped agent is not lost")
		}
	}
	b.open("/groups/" + proj.ID + "/clusters/dest-cluster/migrate")
	b.do("wizard", waitText(`[data-step]`, "Step 1"), setField(`select[name=deployment]`, "rs0"), click(`form button[type=submit]`),
		waitText(`[data-step]`, "Step 2"), click(`input[name=managedAuthentication]`), click(`form button[type=submit]`),
		waitText(`[data-step]`, "Step 3"), click(`form button[type=submit]`), waitText(`[data-step]`, "Step 4"))
	start := time.Now()
	b.do("validate with the host lost", click(`#run-validation`), chromedp.WaitVisible(chromedp.CSS(`#validation-host-lost`)))
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the lost host was reported after %s", took)
	}
	if msg := b.text(`#validation-host-lost`); !containsAll(msg, "migration-host-1 is lost", "Restart", "livemigrate agent") || strings.Contains(msg, "few seconds") {
		t.Errorf("lost-host validation message %q", msg)
	}
	b.screenshot("validation-host-lost")
}
