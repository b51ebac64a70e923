// Package wttest gives Go tests behavioral API twins (Stripe, Twilio,
// Clerk, Resend, PostHog, logo.dev) from wt, a world of their own per test:
//
//	func TestSignup(t *testing.T) {
//		twins := wttest.Start(t, "stripe")
//		resp, _ := http.PostForm(twins.URL("stripe")+"/v1/customers", url.Values{"email": {"ada@example.com"}})
//		twins.Advance("720h")
//	}
//
// Each Start is a tenant on one wt-host per test binary: its twins have
// their own state, clock, faults and journal, so parallel tests never see
// each other's, and it is removed when the test ends. The host is the one at
// WT_URL (with WT_ADMIN_TOKEN), or one started from WT_HOST_BIN (or wt-host
// on PATH, or the release's, downloaded and checked against its
// checksums.txt: WT_VERSION, WT_DOWNLOAD_URL) serving the twins in
// WT_TWINS_DIR (or the release's, or those installed with `wt-host install`). Call wttest.Main from TestMain to stop it when the
// tests end; on Linux it also stops if the test binary dies.
//
// The package uses the standard library only.
package wttest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Host is a running wt-host: one started here, or one at WT_URL.
type Host struct {
	URL        string
	AdminToken string
	cmd        *exec.Cmd
}

var (
	sharedOnce sync.Once
	shared     *Host
	sharedErr  error
)

// SharedHost is the host every Start of this process uses.
func SharedHost() (*Host, error) {
	sharedOnce.Do(func() {
		if u := os.Getenv("WT_URL"); u != "" {
			shared = &Host{URL: strings.TrimRight(u, "/"), AdminToken: os.Getenv("WT_ADMIN_TOKEN")}
			return
		}
		shared, sharedErr = startHost()
	})
	return shared, sharedErr
}

// Main runs the tests, then stops a host this process started:
//
//	func TestMain(m *testing.M) { wttest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	os.Exit(code)
}

// binary is WT_HOST_BIN, else wt-host on PATH, else the release's,
// downloaded once into the user's cache and checked against its
// checksums.txt (whose twins then serve when WT_TWINS_DIR is not set).
func binary() (string, error) {
	if b := os.Getenv("WT_HOST_BIN"); b != "" {
		return b, nil
	}
	if b, err := exec.LookPath("wt-host"); err == nil {
		return b, nil
	}
	url, version := release()
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("wttest: no wt-host on PATH and no cache folder to download it into: %w", err)
	}
	b, twins, err := download(url, filepath.Join(cache, "wt", "wttest", version))
	if err != nil {
		return "", err
	}
	if os.Getenv("WT_TWINS_DIR") == "" {
		downloadedTwins = twins
	}
	return b, nil
}

// downloadedTwins is the release's twins folder, when the binary came from
// a release and WT_TWINS_DIR names none.
var downloadedTwins string

// twinSources are the .wasm files of WT_TWINS_DIR, or nothing (the host
// then serves what `wt-host run` finds in ./wt.toml).
func twinSources() []string {
	dir := os.Getenv("WT_TWINS_DIR")
	if dir == "" {
		dir = downloadedTwins
	}
	if dir == "" {
		return nil
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.wasm"))
	sort.Strings(files)
	return files
}

func startHost() (*Host, error) {
	exe, err := binary()
	if err != nil {
		return nil, err
	}
	args := []string{"run", "--listen", "127.0.0.1:0"}
	for _, f := range twinSources() {
		name := strings.TrimSuffix(filepath.Base(f), ".wasm")
		args = append(args, f, "--port", name+"=0")
	}
	cmd := exec.Command(exe, args...)
	dieWithParent(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("wttest: starting wt-host: %w", err)
	}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := lines.Text()
		if !strings.Contains(line, " listening on ") {
			continue
		}
		for _, word := range strings.Fields(line) {
			if strings.HasPrefix(word, "http://") {
				// Keep reading so the host never blocks on a full pipe.
				go io.Copy(io.Discard, stdout)
				host := &Host{URL: word, cmd: cmd}
				return host, host.waitReady()
			}
		}
	}
	_ = cmd.Wait()
	return nil, fmt.Errorf("wttest: wt-host exited before it was ready: %s", strings.TrimSpace(stderr.String()))
}

func (h *Host) waitReady() error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := h.Control("GET", "twins", nil); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop asks a host this process started to drain and exit.
func (h *Host) Stop() {
	if h.cmd == nil {
		return
	}
	_, _ = h.Control("POST", "shutdown", nil)
	done := make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = h.cmd.Process.Kill()
	}
}

// Control makes one control-plane call (/_wt/{path}) and decodes its JSON.
func (h *Host) Control(method, path string, body interface{}) (map[string]interface{}, error) {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.URL+"/_wt/"+path, reader)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if h.AdminToken != "" {
		req.Header.Set("Authorization", "Bearer "+h.AdminToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var value map[string]interface{}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &value); err != nil {
			return nil, fmt.Errorf("wttest: %s /_wt/%s: not JSON: %s", method, path, data)
		}
	}
	if resp.StatusCode >= 300 {
		message := string(data)
		if e, ok := value["error"].(map[string]interface{}); ok {
			message = fmt.Sprint(e["message"])
		}
		return nil, fmt.Errorf("wttest: %s /_wt/%s: %d: %s", method, path, resp.StatusCode, message)
	}
	return value, nil
}

// Twins is a world of twins of its own (a tenant), removed when its test ends.
type Twins struct {
	t    testing.TB
	host *Host
	ID   string
	urls map[string]string
}

// Start makes a world with the named twins (all when none are named) for
// this test, and removes it when the test ends.
func Start(t testing.TB, twins ...string) *Twins {
	t.Helper()
	host, err := SharedHost()
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]interface{}{"ttl": "1h"}
	if len(twins) > 0 {
		body["twins"] = twins
	}
	made, err := host.Control("POST", "tenants", body)
	if err != nil {
		t.Fatal(err)
	}
	w := &Twins{t: t, host: host, ID: fmt.Sprint(made["id"]), urls: map[string]string{}}
	if all, ok := made["twins"].(map[string]interface{}); ok {
		for name, urls := range all {
			if u, ok := urls.(map[string]interface{}); ok {
				w.urls[name] = fmt.Sprint(u["base_url"])
			}
		}
	}
	t.Cleanup(func() { _, _ = host.Control("DELETE", "tenants/"+w.ID, nil) })
	return w
}

// URL is the base URL to give the twin's client (a port of its own).
func (w *Twins) URL(twin string) string {
	w.t.Helper()
	u, ok := w.urls[twin]
	if !ok {
		w.t.Fatalf("wttest: no twin %q in this world", twin)
	}
	return u
}

func (w *Twins) control(method, path string, body interface{}) map[string]interface{} {
	w.t.Helper()
	value, err := w.host.Control(method, "tenants/"+w.ID+"/"+path, body)
	if err != nil {
		w.t.Fatal(err)
	}
	return value
}

// Reset puts every twin (or the named ones) back to a clean slate.
func (w *Twins) Reset(twins ...string) {
	w.t.Helper()
	if len(twins) == 0 {
		w.control("POST", "reset", nil)
		return
	}
	for _, twin := range twins {
		w.control("POST", "twins/"+twin+"/reset", nil)
	}
}

// Advance moves this world's time forward ("720h", "90s").
func (w *Twins) Advance(by string) {
	w.t.Helper()
	w.control("POST", "clock/advance", map[string]string{"by": by})
}

// Requests is what the twin was asked, oldest first, optionally only
// `method` requests.
func (w *Twins) Requests(twin, method string) []map[string]interface{} {
	w.t.Helper()
	query := url.Values{}
	if method != "" {
		query.Set("method", method)
	}
	value := w.control("GET", "twins/"+twin+"/requests?"+query.Encode(), nil)
	var out []map[string]interface{}
	if list, ok := value["requests"].([]interface{}); ok {
		for _, item := range list {
			if entry, ok := item.(map[string]interface{}); ok {
				out = append(out, entry)
			}
		}
	}
	return out
}

// Fault injects a fault: {"status": 503, "path": "/v1/charges*", "count": 1}.
func (w *Twins) Fault(twin string, spec map[string]interface{}) {
	w.t.Helper()
	w.control("POST", "twins/"+twin+"/faults", spec)
}
