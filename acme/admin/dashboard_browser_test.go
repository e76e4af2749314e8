package admin_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"image/png"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/acmed/acmed/acme/admin"
	"github.com/acmed/acmed/acme/authority"
)

// chromium finds Debian's chromium (or another Chrome). Missing, the test
// is skipped on a workstation but fails under CI, which installs it
// (.ci/run): a dashboard test that silently never runs proves nothing.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH: install it (apt-get install -y chromium); CI needs the dashboard tested in a real browser")
	}
	t.Skip("no chromium on PATH (apt-get install -y chromium): the dashboard's browser test needs it")
	return ""
}

// TestDashboardInChromium loads the dashboard in a real headless Chromium,
// driven over the DevTools protocol, as an operator's browser would:
// TLS from the test server (trusted by its key alone, no certificate
// checks switched off), the admin token as a header, the page rendered
// with its styles. What the browser shows must list the seeded expiring
// certificate and the campaign, and its screenshot must not be blank.
func TestDashboardInChromium(t *testing.T) {
	browser := chromium(t)
	e := newEnv(t, token, nil)
	e.seedEstate(t)
	camp, err := e.auth.AdminRenewEarly(t.Context(), "token", authority.RenewEarlySpec{SANSuffix: "example.net"})
	if err != nil {
		t.Fatal(err)
	}

	// Chromium trusts the test server's key, and only it.
	spki := sha256.Sum256(e.srv.Certificate().RawSubjectPublicKeyInfo)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
	)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc() // stops the browser process
	browserCtx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()

	url := e.srv.URL + admin.DashboardPath
	// The header goes with every request of this tab (chromedp enables
	// the Network domain of each tab it opens).
	if _, err := chromedp.Call(browserCtx, network.SetExtraHTTPHeaders,
		network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer " + token}}); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if err := chromedp.Do(browserCtx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("campaigns"))); err != nil {
		t.Fatalf("chromium on %s: %v", url, err)
	}
	text, err := chromedp.Run(browserCtx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatalf("chromium: the page's text: %v", err)
	}
	shot, err := chromedp.Run(browserCtx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("chromium: screenshot: %v", err)
	}
	for _, want := range []string{
		"certificate estate", "Expiring within 7d", "0a01", "api.example.com", // the expiring certificate
		"Not renewed", "Early-renewal campaigns", camp.ID, "--san-suffix example.net", // the campaign
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page as Chromium renders it does not show %q:\n%s", want, text)
		}
	}
	keepShot(t, shot)
	checkNotBlank(t, shot)

	// Another tab without the token sees no certificate.
	anon, cancelAnon := chromedp.NewContext(browserCtx)
	defer cancelAnon()
	if err := chromedp.Do(anon, chromedp.Navigate(url)); err != nil {
		t.Fatalf("chromium without the token: %v", err)
	}
	anonText, err := chromedp.Run(anon, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatalf("chromium without the token: the page's text: %v", err)
	}
	if strings.Contains(anonText, "0a01") || !strings.Contains(anonText, "authentication required") {
		t.Errorf("without the token the browser shows %q", anonText)
	}
}

// checkNotBlank decodes the screenshot and wants a page drawn: many
// colours, and a good share of pixels that are not white.
func checkNotBlank(t *testing.T, shot []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot (%d bytes) is not a PNG: %v", len(shot), err)
	}
	b := img.Bounds()
	colours := map[[3]uint32]bool{}
	nonWhite := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			if r>>8 < 0xf0 || g>>8 < 0xf0 || bl>>8 < 0xf0 {
				nonWhite++
			}
		}
	}
	total := b.Dx() * b.Dy()
	t.Logf("screenshot %dx%d: %d colours, %.1f%% not white", b.Dx(), b.Dy(), len(colours), 100*float64(nonWhite)/float64(total))
	if b.Dx() < 100 || b.Dy() < 100 || len(colours) < 16 || nonWhite < total/20 {
		t.Fatalf("the screenshot looks blank: %dx%d, %d colours, %d of %d pixels not white", b.Dx(), b.Dy(), len(colours), nonWhite, total)
	}
}

// keepShot writes the screenshot to $ACMED_DASHBOARD_SHOT, when set, for
// a person to look at.
func keepShot(t *testing.T, shot []byte) {
	t.Helper()
	if p := os.Getenv("ACMED_DASHBOARD_SHOT"); p != "" {
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Errorf("ACMED_DASHBOARD_SHOT: %v", err)
		}
	}
}
