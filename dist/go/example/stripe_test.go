// What a Go user's tests look like: Stripe's API over plain net/http
// (stripe-go cannot be fetched here) against a twin, a world per test.
package example

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wondertwin/wt/dist/go/wttest"
)

func TestMain(m *testing.M) { wttest.Main(m) }

func stripe(t *testing.T, twins *wttest.Twins, method, path string, form url.Values) (int, map[string]interface{}) {
	t.Helper()
	req, err := http.NewRequest(method, twins.URL("stripe")+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("sk_test_go", "")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]interface{}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestCustomersAreRememberedPerWorld(t *testing.T) {
	t.Parallel()
	twins := wttest.Start(t, "stripe")
	status, created := stripe(t, twins, "POST", "/v1/customers", url.Values{"email": {"ada@example.com"}})
	if status != 200 {
		t.Fatalf("create: %d %v", status, created)
	}
	_, listed := stripe(t, twins, "GET", "/v1/customers", nil)
	if n := len(listed["data"].([]interface{})); n != 1 {
		t.Fatalf("listed %d customers", n)
	}
	other := wttest.Start(t, "stripe")
	_, elsewhere := stripe(t, other, "GET", "/v1/customers", nil)
	if n := len(elsewhere["data"].([]interface{})); n != 0 {
		t.Fatalf("another world sees %d customers", n)
	}
	if posts := twins.Requests("stripe", "POST"); len(posts) != 1 || posts[0]["path"] != "/v1/customers" {
		t.Fatalf("journal: %v", posts)
	}
}

func TestDeclinesAndFaults(t *testing.T) {
	t.Parallel()
	twins := wttest.Start(t, "stripe")
	status, declined := stripe(t, twins, "POST", "/v1/payment_intents", url.Values{
		"amount": {"500"}, "currency": {"usd"}, "payment_method": {"pm_card_visa_chargeDeclined"}, "confirm": {"true"},
	})
	if status != 402 || declined["error"].(map[string]interface{})["code"] != "card_declined" {
		t.Fatalf("decline: %d %v", status, declined)
	}
	twins.Fault("stripe", map[string]interface{}{"status": 503, "path": "/v1/customers", "count": 1,
		"body": map[string]interface{}{"error": map[string]string{"type": "api_error", "message": "outage"}}})
	if status, _ := stripe(t, twins, "POST", "/v1/customers", nil); status != 503 {
		t.Fatalf("fault: %d", status)
	}
	if status, _ := stripe(t, twins, "POST", "/v1/customers", nil); status != 200 {
		t.Fatalf("after the fault: %d", status)
	}
}

func TestTimeMovesOnlyHere(t *testing.T) {
	t.Parallel()
	twins := wttest.Start(t, "stripe")
	_, clock := stripe(t, twins, "POST", "/v1/test_helpers/test_clocks", url.Values{"frozen_time": {"1700000000"}})
	if clock["status"] != "ready" {
		t.Fatalf("test clock: %v", clock)
	}
	twins.Advance("720h")
	twins.Reset()
	_, listed := stripe(t, twins, "GET", "/v1/customers", nil)
	if n := len(listed["data"].([]interface{})); n != 0 {
		t.Fatalf("after a reset: %d customers", n)
	}
}
