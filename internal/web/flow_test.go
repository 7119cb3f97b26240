package web_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/agent"
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
	// The commands shown start the agent as they are: every flag exists.
	b.do("agent command for the source", setField(`input[name=agentSourceURI]`, "mongodb://127.0.0.1:27017/?replicaSet=rs0"),
		waitText(`#agent-command`, "livemigrate agent --source 'rs0=mongodb://127.0.0.1:27017/?replicaSet=rs0'"))
	cmd := b.text(`#agent-command`)
	checkAgentFlags(t, cmd)
	if strings.Contains(cmd, token) {
		t.Error("the agent command carries the link token on its command line")
	}
	b.screenshot("agent-command")

	// Start the real agent with the token from the page.
	runAgent(t, token, "migration-host-1", agent.Source{Name: "rs0", URI: mdb.URI(src.URI())},
		agent.Source{Name: "offline", URI: "mongodb://migrator@127.0.0.1:1/?directConnection=true", Password: "s3cret-pw"})
	b.do("agent online with its deployment",
		waitText(`tr[data-agent="migration-host-1"]`, "Online"),
		waitText(`tr[data-deployment="rs0"]`, "replica set"),
		waitText(`tr[data-deployment="offline"]`, "Unreachable"))
	if row := b.text(`tr[data-deployment="offline"]`); !strings.Contains(row, "127.0.0.1:1") || strings.Contains(row, "FCV") || strings.Contains(row, "s3cret") {
		t.Errorf("unreachable source row %q: want the reason, not versions", row)
	}
	b.screenshot("agent-online")
	dataSize := b.text(`tr[data-deployment="rs0"] td.num`)

	// Register the destination in the UI: bad input first.
	b.do("open the project", click(`a[data-project]`), chromedp.WaitVisible(chromedp.CSS(`#no-clusters`)))
	if h1 := b.text("h1"); strings.HasPrefix(h1, "Project Project") {
		t.Errorf("project title %q", h1)
	}
	b.do("register: bad connection string", click(`#register summary`), setField(`input[name=clusterName]`, "dest-cluster"),
		setField(`input[name=clusterConnectionString]`, "http://nope"), click(`#register-cluster`),
		waitText(`.field-error:not([hidden])`, "mongodb://"))
	b.do("register: user without password", setField(`input[name=clusterConnectionString]`, dst.URI()), setField(`input[name=clusterUsername]`, "u"),
		click(`#register-cluster`), waitText(`.field-error:not([hidden])`, "both the username and the password"))
	b.screenshot("register-cluster-errors")
	b.do("register the cluster", clearField(`input[name=clusterUsername]`), click(`#register-cluster`),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-cluster="dest-cluster"]`)))
	b.screenshot("cluster-registered")

	// Prerequisites ("I'm Ready to Start").
	b.do("open the prerequisites", click(`tr[data-cluster="dest-cluster"] a.button`), waitText("h1", "Before you migrate to dest-cluster"))
	b.do("choose the source", setField(`#prep-deployment`, "rs0"), chromedp.WaitVisible(chromedp.CSS(`li[data-prereq=version][data-state=ok]`)))
	if st := js[string](b, `document.querySelector('li[data-prereq=host]').dataset.state`); st != "ok" {
		t.Errorf("migration host prerequisite = %q, want ok", st)
	}
	if !js[bool](b, `document.querySelector('#ready-to-start').disabled`) {
		t.Error("I'm Ready to Start is enabled before the items are confirmed")
	}
	b.do("unreachable source fails the version item", setField(`#prep-deployment`, "offline"),
		chromedp.WaitVisible(chromedp.CSS(`li[data-prereq=version][data-state=bad]`)))
	b.screenshot("prerequisites-unreachable")
	b.do("confirm every item", setField(`#prep-deployment`, "rs0"), chromedp.WaitVisible(chromedp.CSS(`li[data-prereq=version][data-state=ok]`)),
		waitJS(`(document.querySelectorAll('input[data-confirm]').forEach((b) => b.click()), true)`),
		chromedp.WaitEnabled(chromedp.CSS(`#ready-to-start`)))
	b.screenshot("prerequisites-ready")
	b.do("prerequisites at phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.checkNoHorizontalScroll("prerequisites at phone width")
	b.screenshot("prerequisites-phone")
	b.do("laptop width", chromedp.EmulateViewport(1280, 900))
	b.do("open the wizard", click(`#ready-to-start`), waitText("h1", "Migrate data to dest-cluster"))
	if crumbs := b.text(`nav.crumbs`); !strings.Contains(crumbs, "Organizations / ") || !strings.Contains(crumbs, "dest-cluster / Migrate") {
		t.Errorf("wizard breadcrumbs %q", crumbs)
	}
	// The connection choice: Standard, the others disabled with why.
	if n := js[int](b, `document.querySelectorAll('input[name=hostnameSchemaType]:disabled').length`); n != 2 {
		t.Errorf("%d disabled connection choices, want 2 (VPC peering, private endpoint)", n)
	}
	if !js[bool](b, `document.querySelector('input[name=hostnameSchemaType][value=PUBLIC]').checked`) {
		t.Error("Standard connection not chosen")
	}
	if why := b.text(`#connection`); !strings.Contains(why, "Private endpoint") || !strings.Contains(why, "Not available") {
		t.Errorf("connection choice %q lacks the reason", why)
	}
	if js[bool](b, `document.querySelector('select[name=deployment] option[value=offline]').disabled`) != true {
		t.Error("the unreachable source can be chosen in the wizard")
	}
	b.do("step source", waitText(`[data-step]`, "Step 1"), waitJS(`document.querySelector('select[name=deployment]').value === 'rs0'`),
		setField(`select[name=deployment]`, ""), click(`form button[type=submit]`),
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
	// One size for the same data: the deployments table and the validation agree.
	if stats := b.text(`#validation tr[data-check="database-statistics"]`); !strings.Contains(stats, dataSize+" data") {
		t.Errorf("deployment data size %q differs from the validation's %q", dataSize, stats)
	}
	if first := js[string](b, `document.querySelector('#validation tbody tr').dataset.check`); first != "destination-namespaces" {
		t.Errorf("first check row %q, want the failing destination-namespaces first", first)
	}
	if title := b.text(`#validation tbody tr th`); title != "Destination has no conflicting collections" {
		t.Errorf("check shown as %q, want its title", title)
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
		waitText(`[data-step]`, "Step 4"), chromedp.WaitVisible(chromedp.CSS(`#validation-stale`)))
	if js[bool](b, `!!document.querySelector('[data-validation]')`) {
		t.Error("the previous validation's result shows next to 'validate again'")
	}
	b.do("validate (passes)", click(`#run-validation`), chromedp.WaitVisible(chromedp.CSS(`[data-validation=SUCCESS]`)))
	b.screenshot("validation-passed")
	b.do("changed settings hide the pass", click(`#wizard-back`), waitText(`[data-step]`, "Step 3"), click(`input[name=dropDestinationData]`),
		click(`form button[type=submit]`), chromedp.WaitVisible(chromedp.CSS(`#validation-stale`)))
	if js[bool](b, `!!document.querySelector('[data-validation=SUCCESS]')`) || !js[bool](b, `document.querySelector('form button[type=submit]').disabled`) {
		t.Error("after a settings change the pass still shows or Review is enabled")
	}
	b.screenshot("validation-stale")
	b.do("settings back", click(`#wizard-back`), click(`input[name=dropDestinationData]`), clearField(`input[name=confirmClusterName]`),
		chromedp.SendKeys(chromedp.CSS(`input[name=confirmClusterName]`), "dest-cluster"), click(`form button[type=submit]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-validation=SUCCESS]`)))
	b.do("review", click(`form button[type=submit]`), waitText(`[data-step]`, "Review"), waitText(`#review`, "deleted before the copy"),
		waitText(`#review`, "Full: every document compared"), waitText(`#review`, "Standard"))
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
	b.do("close the dialog", waitJS(`(document.querySelector('#cutover-dialog').close(), true)`))

	// The finished walk-through: title, no cutover button, frozen clock, connect.
	b.do("finished page", waitText("h1", "Migrated rs0 to dest-cluster"), chromedp.WaitVisible(chromedp.CSS(`#connect-card #connection-string`)))
	if js[bool](b, `document.querySelector('#open-cutover').offsetParent !== null || document.querySelector('#open-cancel').offsetParent !== null`) {
		t.Error("Cut over or Cancel still shows on the finished page")
	}
	if got := b.text(`#lag`); got != "—" {
		t.Errorf("lag on the finished page = %q, want —", got)
	}
	// Read in one evaluation: the stats are re-rendered on every poll, and
	// chromedp.Text's query-then-read can land on a replaced node ("").
	readElapsed := func() string { return js[string](b, `document.querySelector('#elapsed').textContent`) }
	elapsed := readElapsed()
	time.Sleep(2100 * time.Millisecond)
	if again := readElapsed(); again != elapsed {
		t.Errorf("elapsed keeps counting after COMPLETE: %q then %q", elapsed, again)
	}
	if cs := b.text(`#connection-string`); !strings.HasPrefix(cs, "mongodb://") || strings.Contains(cs, "@") && strings.Contains(strings.SplitN(cs, "@", 2)[0], ":") {
		t.Errorf("connection string %q: want the destination's, without credentials", cs)
	}
	b.screenshot("finished-connect")
	b.do("open the report from the page", click(`#report-link`), waitText("h1", "Migration report"))
	b.do("back", waitJS(`(history.back(), true)`), waitText("h1", "Migrated"))
	b.do("open the dialog report", waitJS(`(location.hash = location.hash + '/report', true)`), waitText("h1", "Migration report"))

	// The report.
	b.do("the report", chromedp.WaitVisible(chromedp.CSS(`#summary`)))
	if got := b.text(`[data-fact=collections]`); got != "2" {
		t.Errorf("collections copied = %q, want 2", got)
	}
	if got := b.text(`#verification-status`); !strings.Contains(got, "PASSED") {
		t.Errorf("verification = %q, want PASSED", got)
	}
	// The itemised downtime: the parts and the rest add up to the total,
	// and mode full compared every document (250 + 270) and found nothing.
	if n := js[int](b, `document.querySelectorAll('#downtime-parts li[data-part]').length`); n != 5 {
		t.Errorf("downtime parts shown: %d, want 5 (commit point, drain, index restore, verification, other)", n)
	}
	if sum := js[string](b, `(() => { const d = Number(document.querySelector('[data-fact=downtime]').dataset.seconds);
		const s = [...document.querySelectorAll('#downtime-parts li[data-part]')].reduce((a, li) => a + Number(li.dataset.seconds), 0);
		return Math.abs(d - s) < 0.001 ? 'ok' : 'downtime ' + d + ' s, parts ' + s + ' s'; })()`); sum != "ok" {
		t.Errorf("downtime parts do not add up: %s", sum)
	}
	for fact, want := range map[string]string{"mode": "Full", "rechecked": "520", "found": "0 missing, 0 extra, 0 differing", "repaired": "0", "coverage": "Complete"} {
		if got := b.text(`[data-fact=` + fact + `]`); !strings.HasPrefix(got, want) {
			t.Errorf("report %s = %q, want it to start with %q", fact, got, want)
		}
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

// checkAgentFlags fails when the agent command shown uses a flag that
// `livemigrate agent` does not define (cmd/livemigrate/agent.go).
func checkAgentFlags(t *testing.T, cmd string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "cmd", "livemigrate", "agent.go"))
	if err != nil {
		t.Fatal(err)
	}
	flags := regexp.MustCompile(`(?:^|\s)--([a-z-]+)`).FindAllStringSubmatch(cmd, -1)
	if len(flags) == 0 {
		t.Fatalf("agent command %q has no flags", cmd)
	}
	for _, f := range flags {
		if !strings.Contains(string(src), `"`+f[1]+`"`) {
			t.Errorf("agent command %q uses --%s, which livemigrate agent does not define", cmd, f[1])
		}
	}
	if !strings.Contains(cmd, "LIVEMIGRATE_LINK_TOKEN") || !strings.Contains(string(src), `"LIVEMIGRATE_LINK_TOKEN"`) {
		t.Errorf("agent command %q does not pass the token in $LIVEMIGRATE_LINK_TOKEN", cmd)
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
