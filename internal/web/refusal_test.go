package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/controlplane"
)

// TestUserWithoutRoleSeesRefusal signs in (by keyboard) as an organization
// member: reading works, but generating a link token, seeing the source
// deployments and opening the wizard are refused with the role needed.
func TestUserWithoutRoleSeesRefusal(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cp := startControlPlane(t, controlplane.Timing{})
	proj := cp.project(t)
	if _, err := cp.admin.CreateCluster(ctx, proj.ID, api.ClusterRequest{Name: "dest", ConnectionString: "mongodb://127.0.0.1:1/"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.admin.CreateUser(ctx, cp.orgID, api.UserRequest{Username: "member", Password: "member-password",
		Roles: []api.Role{{OrgID: cp.orgID, RoleName: api.RoleOrgMember}}}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, cp.url, 1280, 900)
	b.open("/orgs/" + cp.orgID + "/live-migration")
	// Keyboard only: the username field has focus; Tab to the password; Enter submits.
	b.do("sign in by keyboard", chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		waitJS(`document.activeElement && document.activeElement.name === 'username'`),
		chromedp.KeyEvent("member\tmember-password\r"),
		waitText("h1", "Live Migration"))
	b.do("deployments refused", waitText(`#deployments-area [data-error=FORBIDDEN]`, "Only organization owners and project owners"))
	b.do("generate refused", click(`#generate-token`), waitText(`#token-area [data-error=USER_UNAUTHORIZED]`, "Permission denied"))
	if got := b.text(`#token-area`); !containsAll(got, "Organization Owner", "Project Owner") {
		t.Errorf("refusal %q does not name the roles needed", got)
	}
	b.screenshot("member-refused-link-token")
	b.open("/groups/" + proj.ID + "/clusters/dest/migrate")
	b.do("wizard refused", waitText(`main [data-error=USER_UNAUTHORIZED]`, "Permission denied"))
	b.screenshot("member-refused-wizard")
}

// TestExpiredSessionReturnsToSignIn lets the session expire: the next call
// sends the user to sign-in with an explanation, and signing in again
// returns to the page they were on.
func TestExpiredSessionReturnsToSignIn(t *testing.T) {
	t.Parallel()
	cp := startControlPlane(t, controlplane.Timing{SessionTTL: 2 * time.Second})
	proj := cp.project(t)
	b := newBrowser(t, cp.url, 1280, 900)
	b.open("/")
	b.signIn("owner", "owner-password")
	b.do("signed in", waitText("h1", "Organizations"))
	time.Sleep(2500 * time.Millisecond) // the session expires
	b.do("open a project after expiry", chromedp.Navigate(cp.url+"/#/groups/"+proj.ID),
		waitText(`[data-notice=session]`, "Your session has expired"))
	b.screenshot("session-expired")
	b.signIn("owner", "owner-password")
	b.do("back where the user was", waitText("h1", proj.Name))
	// Signing out ends the session on the server too.
	b.do("sign out", click(`#nav button`), waitText(`[data-notice=session]`, "You are signed out"))
	b.do("protected page after sign-out", chromedp.Navigate(cp.url+"/#/groups/"+proj.ID), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
