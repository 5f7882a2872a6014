package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// The contract check: every request a test client makes, and the response it
// gets, is validated against the OpenAPI document the server under test
// serves at /api/v1/openapi.yaml, with kin-openapi's openapi3filter. A
// mismatch fails the test with the route, the status and the validator's
// message, so the document cannot drift from the server.
//
// The rules:
//   - every request must find its operation in the document, unless the
//     server answered 404 or 405 (it has no such route either);
//   - a request the document refuses must have been refused (4xx or 5xx): a
//     2xx or 3xx means the server accepts what the document forbids;
//   - every response must have a status the operation declares, a
//     Content-Type its content lists, and a body its schema accepts. Response
//     objects are held closed: a property the schema does not list fails, so
//     a field added to the server without the document fails too;
//   - a response declared without content must have no body.
//
// Websocket upgrades are checked with checkUpgrade (status, Content-Type and
// the refusal's body); CSV, FHIR, HTML and YAML bodies by status and
// Content-Type, and by schema where the document gives one.

// undocumentedPrefixes are served but deliberately not in the document:
// static files are a file tree, not an API.
var undocumentedPrefixes = []string{"/static/"}

// contract is one loaded document: the router for requests, and a second
// copy with every response object closed, for responses.
type contract struct {
	mu       sync.Mutex // validation is serialised; kin-openapi's caches are not the point here
	requests routers.Router
	strict   routers.Router
}

// contracts caches loaded documents by their hash: every server of a test
// run serves the same document, so it is parsed once.
var contracts sync.Map // [sha256.Size]byte → *contract

func init() {
	openapi3filter.RegisterBodyDecoder("application/fhir+json", openapi3filter.JSONBodyDecoder)
}

// loadContract parses and validates an OpenAPI document.
func loadContract(doc []byte) (*contract, error) {
	key := sha256.Sum256(doc)
	if c, ok := contracts.Load(key); ok {
		return c.(*contract), nil
	}
	router := func(closed bool) (routers.Router, error) {
		loader := openapi3.NewLoader()
		d, err := loader.LoadFromData(doc)
		if err != nil {
			return nil, fmt.Errorf("load the OpenAPI document: %w", err)
		}
		if err := d.Validate(context.Background()); err != nil {
			return nil, fmt.Errorf("the OpenAPI document is invalid: %w", err)
		}
		// The servers entry is "/": match paths on any test host.
		d.Servers = nil
		if closed {
			if err := closeObjects(d); err != nil {
				return nil, err
			}
		}
		return legacy.NewRouter(d)
	}
	c := &contract{}
	var err error
	if c.requests, err = router(false); err != nil {
		return nil, err
	}
	if c.strict, err = router(true); err != nil {
		return nil, err
	}
	actual, _ := contracts.LoadOrStore(key, c)
	return actual.(*contract), nil
}

// closeObjects makes every object schema with listed properties refuse
// properties it does not list (additionalProperties: false, or
// unevaluatedProperties: false on an allOf), unless the schema says
// otherwise. The document itself stays open, as API.md lets fields be added;
// the tests hold the server to naming every field it sends in the document.
func closeObjects(d *openapi3.T) error {
	members := map[*openapi3.Schema]bool{}
	err := d.WalkSchemas(func(_ string, ref *openapi3.SchemaRef) error {
		for _, m := range ref.Value.AllOf {
			if m != nil && m.Value != nil {
				members[m.Value] = true
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	no := false
	return d.WalkSchemas(func(_ string, ref *openapi3.SchemaRef) error {
		s := ref.Value
		switch {
		case members[s]:
			// An allOf member is closed by its parent, which sees every member's properties.
		case len(s.AllOf) > 0:
			if s.UnevaluatedProperties.Has == nil && s.UnevaluatedProperties.Schema == nil {
				s.UnevaluatedProperties = openapi3.BoolSchema{Has: &no}
			}
		case len(s.Properties) > 0:
			if s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
				s.AdditionalProperties = openapi3.BoolSchema{Has: &no}
			}
		}
		return nil
	})
}

// exchange is one request and its response, bodies read.
type exchange struct {
	req      *http.Request
	reqBody  []byte
	status   int
	header   http.Header
	respBody []byte
}

// check lists what in x breaks the document; nil when it keeps it.
func (c *contract) check(x exchange) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx := context.Background()
	if c.undocumented(x.req.URL.Path) {
		return nil
	}
	route, params, err := c.requests.FindRoute(x.req)
	if err != nil {
		if x.status == http.StatusNotFound || x.status == http.StatusMethodNotAllowed {
			return nil // the server has no such route either
		}
		return []string{fmt.Sprintf("no operation in the document for this request (%v), yet the server answered it", err)}
	}
	var problems []string
	in := &openapi3filter.RequestValidationInput{
		Request: withBody(x.req, x.reqBody), PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && x.status < 400 {
		problems = append(problems, "the server accepted a request the document refuses: "+oneLine(err))
	}

	sroute, sparams, err := c.strict.FindRoute(x.req)
	if err != nil {
		return append(problems, "the strict copy of the document has no route: "+err.Error())
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: withBody(x.req, x.reqBody), PathParams: sparams, Route: sroute},
		Status:                 x.status,
		Header:                 x.header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(x.respBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		problems = append(problems, "the response breaks the document: "+oneLine(err))
	}
	if r := sroute.Operation.Responses.Status(x.status); r != nil && r.Value != nil && len(r.Value.Content) == 0 && len(bytes.TrimSpace(x.respBody)) > 0 {
		problems = append(problems, fmt.Sprintf("the response has a body (%s) where the document declares none", x.header.Get("Content-Type")))
	}
	return problems
}

func (c *contract) undocumented(path string) bool {
	for _, p := range undocumentedPrefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func withBody(r *http.Request, body []byte) *http.Request {
	r2 := r.Clone(context.Background())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	return r2
}

func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 1500 {
		s = s[:1500] + "…"
	}
	return s
}

// served fetches, over rt (nil: the default transport), and loads the
// document base serves.
func served(base string, rt http.RoundTripper) (*contract, error) {
	cl := &http.Client{Timeout: 10 * time.Second, Transport: rt}
	resp, err := cl.Get(base + "/api/v1/openapi.yaml")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/openapi.yaml: %d", resp.StatusCode)
	}
	return loadContract(b)
}

// contractTransport validates every exchange of a test client against the
// document its server serves; errorf reports a mismatch (t.Errorf). next
// carries the requests (a test may swap in its own, e.g. for TLS).
type contractTransport struct {
	base   string
	next   http.RoundTripper
	errorf func(format string, args ...any)

	once sync.Once
	c    *contract
	err  error
}

func newContractTransport(base string, errorf func(string, ...any)) *contractTransport {
	return &contractTransport{base: base, next: http.DefaultTransport, errorf: errorf}
}

func (ct *contractTransport) contract() (*contract, error) {
	ct.once.Do(func() { ct.c, ct.err = served(ct.base, ct.next) })
	return ct.c, ct.err
}

func (ct *contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := ct.next.RoundTrip(req)
	if err != nil || !strings.HasPrefix(req.URL.String(), ct.base) {
		return resp, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err != nil {
		return resp, nil // the test sees the short body itself
	}
	c, cerr := ct.contract()
	if cerr != nil {
		ct.errorf("openapi: cannot check %s %s: %v", req.Method, req.URL.Path, cerr)
		return resp, nil
	}
	for _, p := range c.check(exchange{req: req, reqBody: reqBody, status: resp.StatusCode, header: resp.Header, respBody: respBody}) {
		ct.errorf("openapi: %s %s → %d: %s", req.Method, req.URL.Path, resp.StatusCode, p)
	}
	return resp, nil
}

// checkUpgrade validates a websocket handshake's answer (101, or the
// refusal with its body) against the document, as the HTTP client's
// exchanges are.
func (c *client) checkUpgrade(rawURL string, header http.Header, resp *http.Response) {
	c.t.Helper()
	ct, ok := c.http.Transport.(*contractTransport)
	if !ok || resp == nil {
		return
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		c.t.Errorf("openapi: %s: %v", rawURL, err)
		return
	}
	u.Scheme = strings.Replace(u.Scheme, "ws", "http", 1)
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		c.t.Errorf("openapi: %s: %v", rawURL, err)
		return
	}
	for k, v := range header {
		req.Header[k] = v
	}
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	contract, err := ct.contract()
	if err != nil {
		c.t.Errorf("openapi: cannot check %s: %v", u.Path, err)
		return
	}
	for _, p := range contract.check(exchange{req: req, status: resp.StatusCode, header: resp.Header, respBody: body}) {
		c.t.Errorf("openapi: websocket %s → %d: %s", u.Path, resp.StatusCode, p)
	}
}

// The OpenAPI document is served, valid, and names exactly the routes the
// server registers (read from its route table, web.Server.Routes), both ways.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	s := startServer(t)
	r := newClient(t, s.base).do("GET", "/api/v1/openapi.yaml", nil)
	if r.status != 200 || !strings.HasPrefix(string(r.body), "openapi: 3.1.0") {
		t.Fatalf("openapi: %d", r.status)
	}
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("the served document is invalid: %v", err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			documented[method+" "+path] = true
			if op.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
			}
		}
	}
	// Registered but deliberately not operations of the document.
	exempt := map[string]string{
		"/api/":        "the catch-all that answers an unknown API route with 404 not_found",
		"GET /static/": "static files, a file tree",
	}
	routes := s.app.server.Routes()
	if len(routes) < 20 {
		t.Fatalf("the route table has %d routes: %v", len(routes), routes)
	}
	served := map[string]bool{}
	for _, p := range routes {
		if _, ok := exempt[p]; ok {
			continue
		}
		method, path, ok := strings.Cut(p, " ")
		if !ok || !strings.HasPrefix(path, "/") {
			t.Errorf("route %q has no method, or a host: document it or exempt it here", p)
			continue
		}
		path = strings.ReplaceAll(strings.TrimSuffix(path, "{$}"), "...}", "}")
		key := method + " " + path
		served[key] = true
		if !documented[key] {
			t.Errorf("the server serves %s but the OpenAPI document lacks it", key)
		}
	}
	for key := range documented {
		if !served[key] {
			t.Errorf("the OpenAPI document has %s but the server does not serve it", key)
		}
	}
}

// The validator bites: responses and requests that break the document fail,
// both checked directly and through a test client whose server is behind a
// proxy that drops a required field.
func TestOpenAPIValidatorBites(t *testing.T) {
	s := startServer(t)
	c, err := served(s.base, nil)
	if err != nil {
		t.Fatal(err)
	}
	nurse := s.signedIn("night.rose")
	me := nurse.do("GET", "/api/v1/me", nil)
	if me.status != 200 {
		t.Fatalf("me: %d %s", me.status, me.body)
	}
	get := func(path string) *http.Request {
		req, err := http.NewRequest("GET", s.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	real := exchange{req: get("/api/v1/me"), status: me.status, header: me.header.Clone(), respBody: me.body}
	if p := c.check(real); len(p) != 0 {
		t.Fatalf("the real /api/v1/me fails the check: %v", p)
	}
	doctor := func(x exchange, edit func(m map[string]any)) exchange {
		var m map[string]any
		if err := json.Unmarshal(x.respBody, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		x.respBody, _ = json.Marshal(m)
		return x
	}
	withStatus := func(x exchange, status int) exchange { x.status = status; return x }
	withType := func(x exchange, ct string) exchange {
		x.header = x.header.Clone()
		x.header.Set("Content-Type", ct)
		return x
	}
	news2 := func(body string, status int, resp string) exchange {
		req, err := http.NewRequest("POST", s.base+"/api/v1/news2", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		h := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
		return exchange{req: req, reqBody: []byte(body), status: status, header: h, respBody: []byte(resp)}
	}
	jsonHeader := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	for _, tc := range []struct {
		name string
		x    exchange
		want string // in the validator's message
	}{
		{"a required field dropped", doctor(real, func(m map[string]any) { delete(m, "role") }), "role"},
		{"a field the document does not list", doctor(real, func(m map[string]any) { m["shoe_size"] = 9 }), "shoe_size"},
		{"a field of the wrong type", doctor(real, func(m map[string]any) { m["name"] = 42 }), "name"},
		{"a value outside its enumeration", doctor(real, func(m map[string]any) { m["role"] = "janitor" }), "role"},
		{"a status the operation does not declare", withStatus(real, http.StatusTeapot), "status"},
		{"a Content-Type the operation does not declare", withType(real, "text/plain; charset=utf-8"), "text/plain"},
		{"an error code not in the list", exchange{req: get("/api/v1/me"), status: 401, header: jsonHeader,
			respBody: []byte(`{"error":{"code":"made_up","message":"x"}}`)}, "made_up"},
		{"a body where the document declares none", exchange{req: func() *http.Request {
			r, _ := http.NewRequest("DELETE", s.base+"/api/v1/session", nil)
			return r
		}(), status: 204, header: jsonHeader, respBody: []byte(`{"bye":true}`)}, "declares none"},
		{"an answered route the document lacks", exchange{req: get("/api/v1/nowhere"), status: 200, header: jsonHeader, respBody: []byte(`{}`)}, "no operation"},
		{"a refused request accepted", news2(`{"observations":{"consciousness":"Z"}}`, 200,
			`{"total":0,"risk":"low","partial":false,"subscores":{}}`), "accepted a request"},
	} {
		p := c.check(tc.x)
		if len(p) == 0 {
			t.Errorf("%s: the validator let it through", tc.name)
			continue
		}
		if all := strings.Join(p, "; "); !strings.Contains(all, tc.want) {
			t.Errorf("%s: the validator's message does not name %q: %s", tc.name, tc.want, all)
		}
	}
	// The same request refused by the server keeps the document.
	if p := c.check(news2(`{"observations":{"consciousness":"Z"}}`, 400,
		`{"error":{"code":"invalid_value","message":"x","field":"observations.consciousness"}}`)); len(p) != 0 {
		t.Errorf("a refused bad request fails the check: %v", p)
	}

	// End to end: a server whose /api/v1/me loses its role fails a client's test.
	target, _ := url.Parse(s.base)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Path != "/api/v1/me" {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		resp.Body.Close()
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		delete(m, "role")
		b, _ = json.Marshal(m)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy := &http.Server{Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = proxy.Serve(ln) }()
	t.Cleanup(func() { _ = proxy.Close() })
	var mu sync.Mutex
	var caught []string
	record := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		caught = append(caught, fmt.Sprintf(format, args...))
	}
	behind := newClient(t, "http://"+ln.Addr().String())
	behind.http.Transport = newContractTransport(behind.base, record)
	behind.signIn("night.rose", "test-password")
	if r := behind.do("GET", "/api/v1/rota/now", nil); r.status != 200 {
		t.Fatalf("rota/now through the proxy: %d", r.status)
	}
	mu.Lock()
	if len(caught) != 0 {
		t.Errorf("untouched responses through the proxy fail: %v", caught)
	}
	mu.Unlock()
	if r := behind.do("GET", "/api/v1/me", nil); r.status != 200 {
		t.Fatalf("me through the proxy: %d", r.status)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(caught) != 1 || !strings.Contains(caught[0], "GET /api/v1/me → 200") || !strings.Contains(caught[0], "role") {
		t.Errorf("a /api/v1/me without its role was reported as %q, want one failure naming the route, status and field", caught)
	}
}
