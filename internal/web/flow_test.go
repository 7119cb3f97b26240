package web_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/agent"
	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/controlplane"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// TestMigrationFlowInBrowser walks the whole live migration in a browser
// against a real control plane, a real agent and FerretDB servers: sign in,
// generate a link token, start an agent with it, walk the wizard, validate
// (a failing case, then fixed), start, watch progress move, extend the
// cutover window, cut over in three steps, and read the report, at laptop
// and phone widths.
func TestMigrationFlowInBrowser(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cp := startControlPlane(t, controlplane.Timing{ProgressInterval: 500 * time.Millisecond})
	b := newBrowser(t, cp.url, 1280, 900)

	src := mongotest.StartSource(t)
	dst := mongotest.StartDestination(t)
	sc := mongotest.Client(t, src)
	for _, coll := range []string{"orders", "customers"} {
		var docs []any
		for i := range 250 {
			docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "coll", Value: coll}, {Key: "n", Value: i}, {Key: "pad", Value: strings.Repeat("x", 200)}})
		}
		if _, err := sc.Database("shop").Collection(coll).InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	// Leftover data on the destination makes the first validation fail.
	if _, err := mongotest.Client(t, dst).Database("shop").Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: "old"}}); err != nil {
		t.Fatal(err)
	}
	proj := cp.project(t)
	if _, err := cp.admin.CreateCluster(ctx, proj.ID, api.ClusterRequest{Name: "dest-cluster", ConnectionString: dst.URI()}); err != nil {
		t.Fatal(err)
	}

	// Sign in and generate the link token.
	b.open("/")
	b.signIn("owner", "owner-password")
	b.do("open the Live Migration page", click(`a[data-org]`), waitText("h1", "Live Migration"))
	b.do("generate the link token", click(`#generate-token`), chromedp.WaitVisible(chromedp.CSS(`#link-token`)))
	if warning := b.text(`#token-area`); !strings.Contains(warning, "never shown again") {
		t.Errorf("token area %q lacks the never-shown-again warning", warning)
	}
	b.screenshot("link-token-shown-once")
	token := strings.TrimSpace(b.text(`#link-token`))

	// Start the real agent with the token from the page.
	startAgent(t, token, "migration-host-1", agent.Source{Name: "rs0", URI: mdb.URI(src.URI())})
	b.do("agent online with its deployment",
		waitText(`tr[data-agent="migration-host-1"]`, "Online"),
		waitText(`tr[data-deployment="rs0"]`, "replica set"))
	b.screenshot("agent-online")

	// The wizard.
	b.do("open the project", click(`a[data-project]`), waitText("h1", "Project"))
	b.do("open the wizard", click(`tr[data-cluster="dest-cluster"] a.button`), waitText("h1", "Migrate data to dest-cluster"))
	b.do("step source", waitText(`[data-step]`, "Step 1"), click(`form button[type=submit]`),
		waitText(`.field-error:not([hidden])`, "Choose the deployment"))
	b.do("choose the deployment", setField(`select[name=deployment]`, "rs0"), waitText(`#dep-info`, "Oplog"))
	b.screenshot("wizard-source")
	b.do("step credentials", click(`form button[type=submit]`), waitText(`[data-step]`, "Step 2"))
	b.do("credentials are required", click(`form button[type=submit]`), waitText(`.field-error:not([hidden])`, "source username"))
	b.do("managed authentication and TLS", click(`input[name=managedAuthentication]`), click(`input[name=ssl]`),
		chromedp.WaitVisible(chromedp.CSS(`input[name=caCertificatePath]`)), setField(`input[name=caCertificatePath]`, "relative/ca.pem"),
		click(`form button[type=submit]`), waitText(`.field-error:not([hidden])`, "absolute path"))
	b.screenshot("wizard-credentials")
	b.do("TLS off again", click(`input[name=ssl]`), click(`form button[type=submit]`), waitText(`[data-step]`, "Step 3"))
	// Sharding is offered disabled, with why: nothing would apply it.
	if !js[bool](b, `document.querySelector('input[name=sharding]').disabled`) {
		t.Error("the sharding option is enabled; sharded destinations are not supported")
	}
	b.do("sharding unavailable, with why", waitText(`#sharding-unavailable`, "not supported yet"))
	b.screenshot("wizard-sharding-unavailable")
	b.do("options", click(`form button[type=submit]`), waitText(`[data-step]`, "Step 4"))

	// Validation fails: shop.orders exists on the destination.
	b.do("validate (fails)", click(`#run-validation`), chromedp.WaitVisible(chromedp.CSS(`[data-validation=FAILED]`)))
	if row := b.text(`#validation table`); !strings.Contains(row, "already exist on the destination") {
		t.Errorf("validation table lacks the failing namespace check:\n%s", row)
	}
	if disabled := js[bool](b, `document.querySelector('form button[type=submit]').disabled`); !disabled {
		t.Error("Review is enabled after a failed validation")
	}
	b.screenshot("validation-failed")

	// Fix it: clear existing data, which requires typing the cluster name.
	b.do("back to options", click(`#wizard-back`), waitText(`[data-step]`, "Step 3"))
	b.do("clear existing data needs the typed name", click(`input[name=dropDestinationData]`),
		chromedp.SendKeys(chromedp.CSS(`input[name=confirmClusterName]`), "dest"), click(`form button[type=submit]`),
		waitText(`.field-error:not([hidden])`, "Type dest-cluster exactly"))
	b.screenshot("clear-data-confirmation")
	b.do("type the cluster name, choose full verification", chromedp.SendKeys(chromedp.CSS(`input[name=confirmClusterName]`), "-cluster"),
		chromedp.SetValue(chromedp.CSS(`select[name=verificationMode]`), "full"), click(`form button[type=submit]`),
		waitText(`[data-step]`, "Step 4"))
	b.do("validate (passes)", click(`#run-validation`), chromedp.WaitVisible(chromedp.CSS(`[data-validation=SUCCESS]`)))
	b.screenshot("validation-passed")
	b.do("review", click(`form button[type=submit]`), waitText(`[data-step]`, "Review"), waitText(`#review`, "deleted before the copy"),
		waitText(`#review`, "Full: every document compared"))
	b.screenshot("review")

	// Start and watch it.
	b.do("start", click(`#start-migration`), waitText("h1", "Migrating rs0 to dest-cluster"))
	b.do("copy progress", waitText(`#copy-text`, "500 of 500 documents"), chromedp.WaitVisible(chromedp.CSS(`tr[data-ns="shop.orders"]`)))
	b.do("ready for cutover", chromedp.WaitEnabled(chromedp.CSS(`#open-cutover`)), chromedp.WaitVisible(chromedp.CSS(`#countdown`)))
	b.screenshot("walkthrough-ready")
	before := eventsApplied(b)
	for i := range 20 {
		if _, err := sc.Database("shop").Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: 1000 + i}, {Key: "late", Value: true}}); err != nil {
			t.Fatal(err)
		}
	}
	b.do("events applied move", waitJS(`Number(document.querySelector('#events-applied').textContent.replace(/,/g, '')) >= `+strconv.FormatInt(before+20, 10)))
	countdown := b.text(`#countdown`)
	if !strings.HasPrefix(countdown, "4d 23h") && !strings.HasPrefix(countdown, "5d 0h") {
		t.Errorf("countdown %q, want about 5 days", countdown)
	}
	b.do("extend the window", click(`#extend`), waitText(`#extend-status`, "Extended"), waitJS(`document.querySelector('#countdown').textContent.startsWith('5d 23h')`))
	b.screenshot("walkthrough-extended")

	// Phone width: readable, no horizontal scrolling.
	b.do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.checkNoHorizontalScroll("walkthrough at phone width")
	b.screenshot("walkthrough-phone")
	b.do("laptop width", chromedp.EmulateViewport(1280, 900))

	// Three-step cutover.
	b.do("open the cutover dialog", click(`#open-cutover`), chromedp.WaitVisible(chromedp.CSS(`#cutover-dialog`)))
	if js[bool](b, `!document.querySelector('#cutover-next').disabled`) {
		t.Error("cutover Next is enabled before confirming writes are stopped")
	}
	b.screenshot("cutover-stop-writes")
	b.do("writes stopped", click(`#writes-stopped`), click(`#cutover-next`), chromedp.WaitVisible(chromedp.CSS(`#cutover-confirm`)))
	b.screenshot("cutover-confirm")
	b.do("confirm", click(`#cutover-confirm`), chromedp.WaitVisible(chromedp.CSS(`#finalizing, #cutover-done`)))
	b.screenshot("cutover-finalizing")
	b.do("finalized", chromedp.WaitVisible(chromedp.CSS(`#cutover-done`)))
	b.screenshot("cutover-done")

	// The report.
	b.do("open the report", click(`#dialog-report`), waitText("h1", "Migration report"), chromedp.WaitVisible(chromedp.CSS(`#summary`)))
	if got := b.text(`[data-fact=collections]`); got != "2" {
		t.Errorf("collections copied = %q, want 2", got)
	}
	if got := b.text(`#verification-status`); !strings.Contains(got, "PASSED") {
		t.Errorf("verification = %q, want PASSED", got)
	}
	if n := js[int](b, `document.querySelectorAll('#ver-h ~ * tr[data-ns]').length`); n != 2 {
		t.Errorf("verification table has %d collection rows, want 2", n)
	}
	if got := b.text(`#outcome`); !strings.Contains(got, "Point your applications at dest-cluster") {
		t.Errorf("outcome = %q", got)
	}
	for _, ev := range []string{"CREATED", "STARTED", "READY_FOR_CUTOVER", "CUTOVER_WINDOW_EXTENDED", "CUTOVER_STARTED", "COMPLETED"} {
		if n := js[int](b, `document.querySelectorAll('tr[data-event=`+ev+`]').length`); n == 0 {
			t.Errorf("event history lacks %s", ev)
		}
	}
	b.screenshot("report")
	b.do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.checkNoHorizontalScroll("report at phone width")
	b.screenshot("report-phone")

	n, err := mongotest.Client(t, dst).Database("shop").Collection("orders").CountDocuments(ctx, bson.D{})
	if err != nil || n != 270 {
		t.Errorf("destination shop.orders has %d documents (%v), want 270 (leftover dropped, 250 copied, 20 synced)", n, err)
	}
}

func eventsApplied(b *browser) int64 {
	b.t.Helper()
	s := strings.ReplaceAll(b.text(`#events-applied`), ",", "")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		b.t.Fatalf("events applied %q: %v", s, err)
	}
	return n
}

// checkNoHorizontalScroll fails when the page is wider than the viewport
// (tables scroll inside their own wrapper instead).
func (b *browser) checkNoHorizontalScroll(what string) {
	b.t.Helper()
	if wide := js[bool](b, `document.documentElement.scrollWidth > window.innerWidth + 1`); wide {
		w := js[string](b, `document.documentElement.scrollWidth + ' > ' + window.innerWidth`)
		b.t.Errorf("%s: the page scrolls horizontally (%s)", what, w)
	}
}

// startAgent runs a real agent with the link token until the test ends.
func startAgent(t *testing.T, token, host string, sources ...agent.Source) {
	t.Helper()
	a, err := agent.New(agent.Options{LinkToken: token, Hostname: host, Sources: sources, Version: "v0.0.0-test",
		ProgressInterval: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent run: %v", err)
		}
	})
}
