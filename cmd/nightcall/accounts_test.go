package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events/redis/redistest"
)

// on is c's browser (its cookie jar) talking to another instance.
func (c *client) on(s *testServer) *client {
	return &client{t: c.t, base: s.base, http: &http.Client{Jar: c.http.Jar, Timeout: 30 * time.Second, Transport: newContractTransport(s.base, c.t.Errorf)}}
}

// twoOnRedis starts two instances on one real redis-server.
func twoOnRedis(t *testing.T, opts ...func(*serveConfig)) (*testServer, *testServer) {
	t.Helper()
	url := redistest.Start(t)
	onRedis := func(c *serveConfig) {
		c.Store, c.RedisURL = "redis", url
		for _, o := range opts {
			o(c)
		}
	}
	return startServer(t, onRedis), startServer(t, onRedis)
}

// expectSessionEnded reads a socket until the server closes it with the
// session-ended code, within d.
func expectSessionEnded(t *testing.T, what string, ws *websocket.Conn, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		_ = ws.SetReadDeadline(deadline)
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue // a page or an offer sent before the close
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("%s: not closed with a close frame within %v: %v", what, d, err)
		}
		if ce.Code != 4401 {
			t.Fatalf("%s: closed with %d %q, want 4401 (session ended)", what, ce.Code, ce.Text)
		}
		return
	}
}

// Disabling an account on instance a closes its pager socket on instance b
// within 2 s and its call signalling socket on a; its next request on
// either instance is 401, and it cannot sign in (the same 401 as a wrong
// password) until enabled again.
func TestDisableClosesSocketsOnEveryInstance(t *testing.T) {
	a, b := twoOnRedis(t, loopbackVideo)
	admin := a.signedIn("admin")
	okafor := b.signedIn("dr.okafor")
	tab := okafor.pager("b-tab")
	if r := okafor.on(a).do("GET", "/api/v1/me", nil); r.status != 200 {
		t.Fatalf("okafor's session on a before: %d", r.status)
	}

	// A nurse in a call: her signalling socket is on a.
	nurse := a.signedIn("night.rose")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	if r := b.signedIn("dr.patel").do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != 200 {
		t.Fatalf("accept: %d %s", r.status, r.body)
	}
	signal, status, err := nurse.dialSignal(id)
	if err != nil {
		t.Fatalf("nurse's signalling socket: %d %v", status, err)
	}
	defer signal.Close()

	r := admin.do("POST", "/api/v1/users/dr.okafor/disable", nil)
	if r.status != 200 || r.json(t)["disabled"] != true {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	// At once, not once the event has arrived: b had the session cached.
	for _, s := range []*testServer{b, a} {
		if r := okafor.on(s).do("GET", "/api/v1/me", nil); r.status != 401 {
			t.Errorf("okafor's next request on %s: %d, want 401", s.base, r.status)
		}
	}
	expectSessionEnded(t, "okafor's pager on b", tab.ws, 2*time.Second)
	if _, status, _ := okafor.dialPager("again"); status != 401 {
		t.Errorf("a disabled consultant's pager: %d, want 401", status)
	}
	// A disabled account signing in gets exactly the wrong password's answer.
	disabled := newClient(t, b.base).do("POST", "/api/v1/session", map[string]string{"username": "dr.okafor", "password": "test-password"})
	wrong := newClient(t, b.base).do("POST", "/api/v1/session", map[string]string{"username": "dr.patel", "password": "not-the-password"})
	if disabled.status != 401 || !bytes.Equal(disabled.body, wrong.body) {
		t.Errorf("disabled sign-in %d %s, wrong password %d %s: want the same 401", disabled.status, disabled.body, wrong.status, wrong.body)
	}
	if users := admin.do("GET", "/api/v1/users", nil).list(t); !disabledIn(users, "dr.okafor") || disabledIn(users, "dr.patel") {
		t.Errorf("users list: %v", users)
	}

	// The nurse's call socket, on a, closes when she is disabled on b.
	if r := admin.on(b).do("POST", "/api/v1/users/night.rose/disable", nil, "Idempotency-Key", "disable-rose"); r.status != 200 {
		t.Fatalf("disable night.rose on b: %d %s", r.status, r.body)
	}
	expectSessionEnded(t, "night.rose's signalling socket on a", signal, 2*time.Second)
	if r := nurse.do("GET", "/api/v1/residents", nil); r.status != 401 {
		t.Errorf("night.rose's next request: %d, want 401", r.status)
	}
	// The same key again is answered from the record, appending nothing.
	before := len(loadStream(t, a, escalation.UserStream("night.rose")))
	if r := admin.on(b).do("POST", "/api/v1/users/night.rose/disable", nil, "Idempotency-Key", "disable-rose"); r.status != 200 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replayed disable: %d %v", r.status, r.header)
	}
	if after := len(loadStream(t, a, escalation.UserStream("night.rose"))); after != before {
		t.Errorf("a replayed disable appended %d events", after-before)
	}

	// Enabled again, the account signs in afresh; its old session stays dead.
	if r := admin.do("POST", "/api/v1/users/dr.okafor/enable", nil); r.status != 200 || r.json(t)["disabled"] != false {
		t.Fatalf("enable: %d %s", r.status, r.body)
	}
	if r := okafor.do("GET", "/api/v1/me", nil); r.status != 401 {
		t.Errorf("the session from before the disable after enable: %d, want 401", r.status)
	}
	b.signedIn("dr.okafor").pager("b-tab-2")

	// Who may do it, and bad input.
	for _, c := range []struct {
		who, path string
		status    int
		code      string
	}{
		{"dr.patel", "/api/v1/users/dr.okafor/disable", 403, "forbidden"},
		{"auditor", "/api/v1/users/dr.okafor/enable", 403, "forbidden"},
		{"admin", "/api/v1/users/nobody/disable", 404, "not_found"},
		{"admin", "/api/v1/users/admin/disable", 403, "forbidden"},
	} {
		r := a.signedIn(c.who).do("POST", c.path, nil)
		if r.status != c.status || r.apiErr(t)["code"] != c.code {
			t.Errorf("%s POST %s: %d %s, want %d %s", c.who, c.path, r.status, r.body, c.status, c.code)
		}
	}
	evs := loadStream(t, a, escalation.UserStream("dr.okafor"))
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	if count(types, escalation.TypeUserDisabled) != 1 || count(types, escalation.TypeUserEnabled) != 1 {
		t.Errorf("dr.okafor's stream: %v", types)
	}
}

func disabledIn(users []map[string]any, username string) bool {
	for _, u := range users {
		if u["username"] == username {
			return u["disabled"] == true
		}
	}
	return false
}

func loadStream(t *testing.T, s *testServer, stream string) []struct{ Type string } {
	t.Helper()
	evs, err := s.app.store.Load(context.Background(), stream, 0)
	if err != nil {
		t.Fatalf("load %s: %v", stream, err)
	}
	out := make([]struct{ Type string }, len(evs))
	for i, e := range evs {
		out[i].Type = e.Type
	}
	return out
}

// A password reset revokes every session of the account on every instance
// and closes its pager; the old password no longer works, the new one does.
func TestPasswordResetRevokesSessions(t *testing.T) {
	a, b := twoOnRedis(t)
	admin := a.signedIn("admin")
	phone, laptop := a.signedIn("dr.okafor"), b.signedIn("dr.okafor")
	tab := laptop.pager("laptop")
	for _, c := range []struct {
		body   any
		status int
		code   string
		field  string
	}{
		{map[string]string{}, 400, "missing_field", "password"},
		{map[string]string{"password": "short"}, 400, "invalid_value", "password"},
		{"{not json", 400, "invalid_json", ""},
	} {
		r := admin.do("POST", "/api/v1/users/dr.okafor/password", c.body)
		if e := r.apiErr(t); r.status != c.status || e["code"] != c.code || (c.field != "" && e["field"] != c.field) {
			t.Errorf("password %v: %d %s", c.body, r.status, r.body)
		}
	}
	if r := admin.do("POST", "/api/v1/users/nobody/password", map[string]string{"password": "a-long-new-password"}); r.status != 404 {
		t.Errorf("unknown user: %d %s", r.status, r.body)
	}
	if r := phone.do("POST", "/api/v1/users/dr.patel/password", map[string]string{"password": "a-long-new-password"}); r.status != 403 {
		t.Errorf("a consultant resetting another's password: %d", r.status)
	}
	// Nothing above ended a session.
	if r := phone.do("GET", "/api/v1/me", nil); r.status != 200 {
		t.Fatalf("before the reset: %d", r.status)
	}

	if r := admin.do("POST", "/api/v1/users/dr.okafor/password", map[string]string{"password": "a-long-new-password"}); r.status != 204 {
		t.Fatalf("reset: %d %s", r.status, r.body)
	}
	// At once on b, where the laptop's session was cached.
	for _, c := range []struct {
		name string
		c    *client
	}{{"laptop on b", laptop}, {"phone on b", phone.on(b)}, {"phone on a", phone}, {"laptop on a", laptop.on(a)}} {
		if r := c.c.do("GET", "/api/v1/me", nil); r.status != 401 {
			t.Errorf("%s after the reset: %d, want 401", c.name, r.status)
		}
	}
	expectSessionEnded(t, "the laptop's pager on b", tab.ws, 2*time.Second)
	if r := newClient(t, b.base).do("POST", "/api/v1/session", map[string]string{"username": "dr.okafor", "password": "test-password"}); r.status != 401 {
		t.Errorf("the old password: %d", r.status)
	}
	fresh := newClient(t, b.base)
	fresh.signIn("dr.okafor", "a-long-new-password")
	if r := fresh.on(a).do("GET", "/api/v1/me", nil); r.status != 200 {
		t.Errorf("the new password's session on a: %d", r.status)
	}
	if n := count(typesOf(loadStream(t, a, escalation.UserStream("dr.okafor"))), escalation.TypeUserPasswordChanged); n != 1 {
		t.Errorf("%d user.password_changed events, want 1", n)
	}
}

func typesOf(evs []struct{ Type string }) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

// Signing out on instance a is 401 at once on instance b, even where b had
// the session cached, and closes the pager that session opened on b; the
// same account's other sessions live on.
func TestSignOutHonouredAtOnceOnEveryInstance(t *testing.T) {
	a, b := twoOnRedis(t)
	okafor := a.signedIn("dr.okafor")
	onB := okafor.on(b)
	if r := onB.do("GET", "/api/v1/me", nil); r.status != 200 {
		t.Fatalf("the session on b: %d", r.status)
	}
	tab := onB.pager("b-tab")
	other := b.signedIn("dr.okafor")
	otherTab := other.pager("other-tab")

	// The browser forgets its cookie on sign-out; whoever copied it keeps it.
	u, _ := url.Parse(b.base)
	copied := okafor.http.Jar.Cookies(u)
	if r := okafor.do("DELETE", "/api/v1/session", nil); r.status != 204 {
		t.Fatalf("sign out: %d", r.status)
	}
	stolen := newClient(t, b.base)
	stolen.http.Jar.SetCookies(u, copied)
	if len(copied) == 0 {
		t.Fatal("no session cookie to copy")
	}
	if r := stolen.do("GET", "/api/v1/me", nil); r.status != 401 {
		t.Errorf("b right after sign-out on a: %d, want 401", r.status)
	}
	if r := stolen.on(a).do("GET", "/api/v1/me", nil); r.status != 401 {
		t.Errorf("a right after sign-out on a: %d, want 401", r.status)
	}
	expectSessionEnded(t, "the signed-out session's pager on b", tab.ws, 2*time.Second)
	if r := other.do("GET", "/api/v1/me", nil); r.status != 200 {
		t.Errorf("another session of the account after sign-out: %d", r.status)
	}
	otherTab.send(map[string]string{"type": "seen", "page_id": "none"})
	otherTab.quiet("page_cancelled", 300*time.Millisecond)
	if n := count(typesOf(loadStream(t, b, escalation.UserStream("dr.okafor"))), escalation.TypeSessionRevoked); n != 1 {
		t.Errorf("%d session.revoked events, want 1", n)
	}
}

// A session ends after the idle time-out without requests, while requests
// keep it alive; however busy, it ends at the absolute time-out.
func TestSessionTimeouts(t *testing.T) {
	const idle, maxAge = 2 * time.Second, 6 * time.Second
	s := startServer(t, func(c *serveConfig) { c.SessionIdle, c.SessionMax = idle, maxAge })

	// Idle: a session left alone for longer than --session-idle is over.
	quiet := s.signedIn("night.elm")
	if r := quiet.do("GET", "/api/v1/me", nil); r.status != 200 {
		t.Fatalf("a fresh session: %d", r.status)
	}
	waitOut(idle + time.Second)
	if r := quiet.do("GET", "/api/v1/me", nil); r.status != 401 {
		t.Errorf("a session idle past --session-idle: %d, want 401", r.status)
	}

	// Busy: requests keep it alive past the idle time-out, until the
	// absolute time-out ends it however busy (the deadline the session ID
	// carries is whole seconds, so it may come up to a second early).
	busy := s.signedIn("night.rose")
	signedIn := time.Now()
	for {
		r := busy.do("GET", "/api/v1/me", nil)
		since := time.Since(signedIn)
		if r.status == 401 {
			if since < maxAge-1500*time.Millisecond {
				t.Errorf("a busy session ended %v after sign-in, before --session-max %v", since, maxAge)
			}
			break
		}
		if r.status != 200 {
			t.Fatalf("busy session: %d", r.status)
		}
		if since > maxAge+5*time.Second {
			t.Fatalf("a busy session outlived --session-max %v", maxAge)
		}
		waitOut(idle / 8) // the pace of a busy user
	}
}

// waitOut lets wall-clock time pass: the time-outs under test are wall-clock.
func waitOut(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

// At most 8 pager sockets per consultant: the 9th is refused before the
// upgrade with 429 rate_limited; closing one makes room; another consultant
// is not affected.
func TestPagerSocketsPerUserBounded(t *testing.T) {
	s := startServer(t)
	okafor := s.signedIn("dr.okafor")
	var tabs []*pagerSocket
	for i := 0; i < 8; i++ {
		tabs = append(tabs, okafor.pager("tab-"+string(rune('a'+i))))
	}
	_, status, err := okafor.dialPager("tab-ninth")
	if status != http.StatusTooManyRequests || err == nil {
		t.Fatalf("the 9th pager socket: %d %v, want 429", status, err)
	}
	// The refusal is the API's error, with Retry-After.
	req, _ := http.NewRequest("GET", s.base+"/api/v1/pager?device=probe", nil)
	for _, c := range okafor.http.Jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 429 || body.Error.Code != "rate_limited" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("refused upgrade: %d %+v Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if p, status, err := s.signedIn("dr.patel").dialPager("patel"); err != nil {
		t.Errorf("another consultant's pager: %d %v", status, err)
	} else {
		p.ws.Close()
	}
	tabs[0].ws.Close()
	waitFor(t, 5*time.Second, "a closed pager socket makes room", func() bool {
		p, _, err := okafor.dialPager("tab-again")
		if err != nil {
			return false
		}
		tabs[0] = p
		return true
	})
}

// The user commands work from a fresh data dir, and a disable from the
// command line reaches a running service on that dir through the log: its
// pager socket closes and its next request is 401.
func TestUserCLIFromAFreshDataDir(t *testing.T) {
	dir := t.TempDir()
	d := []string{"--data-dir", dir}
	mustCLI(t, "", append([]string{"home", "add", "--id", "oak-lodge", "--name", "Oak Lodge", "--fallback-phone", "+44 1632 960003"}, d...)...)
	mustCLI(t, "a-long-staff-password\n", append([]string{"user", "add", "--username", "night.oak", "--name", "Olu Night", "--role", "carehome", "--home", "oak-lodge"}, d...)...)
	mustCLI(t, "a-long-first-password\n", append([]string{"user", "add", "--username", "dr.oak", "--name", "Dr Oak", "--role", "consultant"}, d...)...)

	out := mustCLI(t, "", append([]string{"user", "list"}, d...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "USERNAME") || !strings.Contains(lines[2], "night.oak") ||
		!strings.Contains(lines[2], "Olu Night") || !strings.Contains(lines[2], "carehome") || !strings.Contains(lines[2], "oak-lodge") || !strings.HasSuffix(lines[2], "no") {
		t.Fatalf("user list:\n%s", out)
	}
	if strings.Contains(out, "argon2") {
		t.Fatal("user list shows a password hash")
	}

	if _, err := cli(t, "short\n", append([]string{"user", "passwd", "--username", "dr.oak"}, d...)...); err == nil || !strings.HasPrefix(err.Error(), "password:") {
		t.Errorf("a short new password: %v", err)
	}
	if _, err := cli(t, "a-long-other-password\n", append([]string{"user", "passwd", "--username", "nobody"}, d...)...); err == nil || !strings.HasPrefix(err.Error(), "username:") {
		t.Errorf("passwd for an unknown user: %v", err)
	}
	if _, err := cli(t, "", append([]string{"user", "disable"}, d...)...); err == nil || !strings.HasPrefix(err.Error(), "--username") {
		t.Errorf("disable without a username: %v", err)
	}
	mustCLI(t, "a-long-second-password\n", append([]string{"user", "passwd", "--username", "dr.oak"}, d...)...)
	mustCLI(t, "", append([]string{"user", "disable", "--username", "night.oak"}, d...)...)
	var listed []map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, "", append([]string{"user", "list", "--json"}, d...)...)), &listed); err != nil || !disabledIn(listed, "night.oak") || disabledIn(listed, "dr.oak") {
		t.Fatalf("user list --json after disable: %v %v", listed, err)
	}

	s := startServer(t, func(c *serveConfig) { c.DataDir, c.Demo = dir, false })
	if r := newClient(t, s.base).do("POST", "/api/v1/session", map[string]string{"username": "night.oak", "password": "a-long-staff-password"}); r.status != 401 {
		t.Errorf("a disabled account signs in: %d", r.status)
	}
	if r := newClient(t, s.base).do("POST", "/api/v1/session", map[string]string{"username": "dr.oak", "password": "a-long-first-password"}); r.status != 401 {
		t.Errorf("the password before passwd: %d", r.status)
	}
	mustCLI(t, "", append([]string{"user", "enable", "--username", "night.oak"}, d...)...)
	newClient(t, s.base).signIn("night.oak", "a-long-staff-password")

	// A disable from the command line, beside the running service.
	doctor := newClient(t, s.base)
	doctor.signIn("dr.oak", "a-long-second-password")
	tab := doctor.pager("oak-tab")
	mustCLI(t, "", append([]string{"user", "disable", "--username", "dr.oak"}, d...)...)
	expectSessionEnded(t, "the pager of an account disabled from the command line", tab.ws, 2*time.Second)
	if r := doctor.do("GET", "/api/v1/me", nil); r.status != 401 {
		t.Errorf("next request after a disable from the command line: %d", r.status)
	}
}
