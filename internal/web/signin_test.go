package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/livemigrate/livemigrate/internal/controlplane"
)

func TestSignInShowsLiveMigrationPage(t *testing.T) {
	t.Parallel()
	cp := startControlPlane(t, controlplane.Timing{})
	b := newBrowser(t, cp.url, 1280, 900)
	b.open("/")
	b.do("sign-in page", chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	b.screenshot("sign-in")
	b.signIn("owner", "wrong")
	b.do("wrong password refused", waitText(`[data-error=BAD_CREDENTIALS]`, "Wrong username or password"))
	b.signIn("owner", "owner-password")
	b.do("organizations", chromedp.WaitVisible(chromedp.CSS(`[data-user]`)), waitText("h1", "Organizations"))
	b.do("live migration page", chromedp.Click(chromedp.CSS(`a[data-org]`)), waitText("h1", "Live Migration"), waitText("#agents-area", "No migration host"))
	b.screenshot("live-migration")
	b.do("generate a token", click(`#generate-token`), chromedp.WaitVisible(chromedp.CSS(`#link-token`)), chromedp.WaitVisible(chromedp.CSS(`#copy-token`)))
	b.do("delete asks first", click(`#delete-token`), chromedp.WaitVisible(chromedp.CSS(`#confirm-delete-token`)))
	b.screenshot("delete-token-confirm")
	b.do("delete the token", click(`#confirm-delete-token`), waitText(`#token-area`, "The link token is deleted"))
	if n := js[int](b, `document.querySelectorAll('#link-token').length`); n != 0 {
		t.Error("the token is still shown after deletion")
	}
}
