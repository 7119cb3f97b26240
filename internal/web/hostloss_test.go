package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/controlplane"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// TestLostHostInBrowser stops the real agent of a migration that is ready
// for cutover: the walk-through says the migration host is lost, since when
// and what to do, shows no live lag and disables Cut over with the reason;
// the restarted agent makes it ready again. Then the host dies right after
// the operator confirmed the cutover: Finalize says the host was lost during
// the cutover, and the cutover completes when the agent is back.
func TestLostHostInBrowser(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// Lost after 3 × 2 s without a call.
	cp := startControlPlane(t, controlplane.Timing{HeartbeatInterval: 2 * time.Second, ProgressInterval: 500 * time.Millisecond})
	b := newBrowser(t, cp.url, 1280, 900)
	h := startHostedMigration(t, cp)
	proj, m, dst, source, stop := h.proj, h.m, h.dst, h.source, h.stop

	b.open("/")
	b.signIn("owner", "owner-password")
	b.do("signed in", waitText("h1", "Organizations"))
	b.open("/groups/" + proj.ID + "/migrations/" + m.ID)
	b.do("ready for cutover", chromedp.WaitEnabled(chromedp.CSS(`#open-cutover`)), waitText(`#migration-status`, "Ready for cutover"))
	b.screenshot("ready")

	// The host stops.
	stop()
	b.do("host lost banner", waitText(`#host-lost`, "Migration host migration-host-1 is lost"))
	banner := b.text(`#host-lost`)
	for _, want := range []string{"Nothing heard from it since", "ago", "livemigrate agent", "with the same link token", "Cut over is disabled"} {
		if !strings.Contains(banner, want) {
			t.Errorf("lost-host banner %q lacks %q", banner, want)
		}
	}
	if !js[bool](b, `document.querySelector('#open-cutover').disabled`) {
		t.Error("Cut over is enabled while the migration host is lost")
	}
	if why := b.text(`#cutover-why`); !strings.Contains(why, "migration host migration-host-1 is lost") {
		t.Errorf("cutover hint %q does not say the host is lost", why)
	}
	if lag := b.text(`#lag`); lag != "—" || !js[bool](b, `document.querySelector('#lag').hasAttribute('data-stale')`) {
		t.Errorf("lag shows %q while the host is lost, want — marked stale", lag)
	}
	if status := b.text(`#migration-status`); strings.Contains(status, "Ready for cutover") || !strings.Contains(status, "Migration host lost") {
		t.Errorf("status %q, want the lost badge and no Ready for cutover", status)
	}
	if info := b.text(`#info`); !strings.Contains(info, "(before the host was lost)") {
		t.Errorf("the last progress line %q is not marked as from before the loss", info)
	}
	b.screenshot("host-lost")

	// Restarted: ready again.
	stop = runAgent(t, h.token, "migration-host-1", source)
	b.do("ready again", chromedp.WaitNotPresent(chromedp.CSS(`#host-lost`)), chromedp.WaitEnabled(chromedp.CSS(`#open-cutover`)))
	b.screenshot("host-back")

	// The host dies right after the operator confirmed the cutover.
	b.do("open the cutover dialog", click(`#open-cutover`), chromedp.WaitVisible(chromedp.CSS(`#cutover-dialog`)))
	b.do("writes stopped", click(`#writes-stopped`), click(`#cutover-next`), chromedp.WaitVisible(chromedp.CSS(`#cutover-confirm`)))
	stop()
	b.do("confirm", click(`#cutover-confirm`), chromedp.WaitVisible(chromedp.CSS(`#finalizing, #finalize-host-lost`)))
	b.do("lost during cutover", waitText(`#finalize-host-lost`, "was lost during the cutover"),
		waitText(`#host-lost`, "The cutover is not lost: it resumes where it left off when the host is back"),
		waitText(`#cutting`, "was lost during the cutover"))
	if during := js[string](b, `document.querySelector('#host-lost').dataset.duringCutover`); during != "true" {
		t.Errorf("banner data-during-cutover = %q, want true", during)
	}
	b.screenshot("host-lost-during-cutover")

	// Back: the cutover completes.
	runAgent(t, h.token, "migration-host-1", source)
	b.do("cutover complete", chromedp.WaitVisible(chromedp.CSS(`#cutover-done`)))
	b.screenshot("cutover-done")
	n, err := mongotest.Client(t, dst).Database("shop").Collection("orders").CountDocuments(ctx, bson.D{})
	if err != nil || n != 100 {
		t.Errorf("destination shop.orders has %d documents (%v), want 100", n, err)
	}
}
