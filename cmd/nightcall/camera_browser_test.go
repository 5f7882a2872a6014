package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// holdCamera makes the tab's getUserMedia wait until the test answers it:
// window.__camera.release() starts the real (fake-device) camera for every
// call held, window.__camera.refuse() refuses them as a person refusing the
// permission prompt would, and window.__camera.real() stops holding.
const holdCamera = `(() => {
	const md = navigator.mediaDevices, real = md.getUserMedia.bind(md);
	const held = [];
	window.__camera = {
		asked: () => held.length,
		release: () => held.splice(0).forEach((h) => real(h.c).then(h.res, h.rej)),
		refuse: () => held.splice(0).forEach((h) => h.rej(new DOMException("Permission denied", "NotAllowedError"))),
		real: () => { md.getUserMedia = real; },
	};
	md.getUserMedia = (c) => new Promise((res, rej) => held.push({ c, res, rej }));
	return true;
})()`

// acceptFromTheConsole starts the service with loopback video, signs the
// home (night.rose) and the consultant (dr.okafor) in, raises for rc-101,
// runs homeScript on the home's waiting page and doctorScript on the
// console (each unless ""), and presses Accept on the console's banner.
func acceptFromTheConsole(t *testing.T, homeScript, doctorScript string) (home, doctor context.Context, id string) {
	t.Helper()
	s := startServer(t, loopbackVideo)
	browser := newBrowser(t)
	home, doctor = newTab(t, browser), newTab(t, browser)
	browserSignIn(t, home, s.base, "night.rose", "test-password")
	browserSignIn(t, doctor, s.base, "dr.okafor", "test-password")
	nurse := s.signedIn("night.rose")
	within(t, doctor, 20*time.Second, chromedp.Navigate(s.base+"/console"))
	waitText(t, doctor, "pager-status", "Pager connected", 20*time.Second)
	id = str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	within(t, home, 20*time.Second, chromedp.Navigate(s.base+"/home"))
	waitFor(t, 20*time.Second, "the home's wait view", func() bool { return visible(t, home, "wait-view") })
	for _, run := range []struct {
		tab    context.Context
		script string
	}{{home, homeScript}, {doctor, doctorScript}} {
		if run.script != "" {
			js[bool](t, run.tab, run.script)
		}
	}
	button := `button.page-accept[data-escalation="` + id + `"]`
	waitFor(t, 20*time.Second, "the Accept banner", func() bool { return js[bool](t, doctor, `!!document.querySelector('`+button+`')`) })
	within(t, doctor, 10*time.Second, chromedp.Click(button))
	return home, doctor, id
}

// callState is the page's peer connection state, "none" without one.
func callState(t *testing.T, tab context.Context) string {
	return js[string](t, tab, `window.NightcallCall.report().then((r) => r.state || "none", () => "none")`)
}

// TestTheConsoleCallDoesNotWaitForItsCamera: the consultant accepts while
// the camera has not started (a permission prompt still open, a slow
// camera). The call connects and the home's video plays on the console all
// the same; when the camera comes, the home sees the consultant. A camera
// refused on a later join, after the call has connected, ends it with the
// reason in words and Rejoin offered, and Rejoin with the camera allowed
// joins again.
func TestTheConsoleCallDoesNotWaitForItsCamera(t *testing.T) {
	home, doctor, _ := acceptFromTheConsole(t, "", holdCamera)

	// inboundAudio is the audio packets a page has received, in all.
	inboundAudio := func(tab context.Context) int {
		return js[int](t, tab, `NightcallCall.report().then((r) => (r.streams || []).filter((s) => s.type === "inbound-rtp" && s.kind === "audio").reduce((n, s) => n + s.packets, 0), () => 0)`)
	}
	state := func(tab context.Context) string { return callState(t, tab) }

	// The camera is asked for at the click and not answered: the call
	// connects and the home's picture plays regardless.
	waitFor(t, 10*time.Second, "the camera asked for", func() bool { return js[int](t, doctor, `window.__camera.asked()`) == 1 })
	waitFor(t, 30*time.Second, "the console's call connected with its camera held", func() bool { return state(doctor) == "connected" })
	waitFor(t, 30*time.Second, "the home's video on the console with its camera held", func() bool { return framesDecoded(t, doctor) > 0 })
	if js[int](t, doctor, `window.__camera.asked()`) != 1 {
		t.Fatal("the camera was answered while held")
	}
	waitText(t, doctor, "status", "Waiting for your camera", 10*time.Second)
	if n := framesDecoded(t, home); n != 0 {
		t.Fatalf("the home decoded %d frames of a consultant whose camera has not started", n)
	}

	// The home's tile stays, with its sound: the server may send the
	// home's audio on the m-line the console's microphone slot is on, which
	// a slot claimed send-only refused, taking the tile off the screen.
	waitFor(t, 20*time.Second, "the home's sound on the console", func() bool {
		return js[bool](t, doctor, `NightcallCall.report().then((r) => r.streams.some((s) => s.type === "inbound-rtp" && s.kind === "audio" && s.packets > 50))`)
	})
	time.Sleep(time.Second)
	if n := js[int](t, doctor, `[...document.querySelectorAll("#remotes .tile video")].filter((v) => v.srcObject && v.srcObject.getAudioTracks().length && v.srcObject.getVideoTracks().length).length`); n != 1 {
		t.Fatalf("%d tiles of the home with its sound and picture on the console, want 1", n)
	}

	// The camera comes: its tracks go on the slots the answer claimed,
	// with no new negotiation, and the home sees the consultant.
	js[bool](t, doctor, `(window.__camera.release(), true)`)
	waitFor(t, 30*time.Second, "the consultant's video on the home's page", func() bool { return framesDecoded(t, home) > 0 })
	waitFor(t, 20*time.Second, "the consultant's sound on the home's page", func() bool { return inboundAudio(home) > 50 })
	if got := textOf(t, doctor, "status"); got != "Connected." {
		t.Errorf("the console's status with its camera on: %q, want Connected.", got)
	}

	// Leave, and rejoin with the camera held again; once connected, refuse it.
	within(t, doctor, 5*time.Second, chromedp.Click("#leave"))
	waitFor(t, 10*time.Second, "Rejoin offered after Leave", func() bool { return visible(t, doctor, "rejoin") })
	within(t, doctor, 5*time.Second, chromedp.Click("#rejoin"))
	waitFor(t, 10*time.Second, "the camera asked for on Rejoin", func() bool { return js[int](t, doctor, `window.__camera.asked()`) == 1 })
	waitFor(t, 30*time.Second, "connected again with the camera held", func() bool { return state(doctor) == "connected" })
	js[bool](t, doctor, `(window.__camera.refuse(), true)`)
	waitText(t, doctor, "status", "no camera or microphone", 10*time.Second)
	if got := textOf(t, doctor, "call-trouble"); !strings.Contains(got, "not allowed") || !strings.Contains(got, "cannot see or hear you") {
		t.Errorf("the trouble box says %q, want why the camera did not start and what it means", got)
	}
	if !visible(t, doctor, "rejoin") || visible(t, doctor, "leave") {
		t.Error("a call ended by its camera does not offer Rejoin")
	}
	if got := state(doctor); got != "none" {
		t.Errorf("the peer connection is %q after the camera was refused, want closed", got)
	}
	if n := js[int](t, doctor, `document.querySelectorAll("#remotes .tile").length`); n != 0 {
		t.Errorf("%d remote tiles left on screen after the call ended", n)
	}

	// Rejoin with the camera allowed: a whole call again. The consultant
	// joins second now, while the home's audio flows (the server offers its
	// microphone's slot as sendrecv, carrying the home's sound): the home
	// hears it all the same.
	heard := inboundAudio(home)
	js[bool](t, doctor, `(window.__camera.real(), true)`)
	within(t, doctor, 5*time.Second, chromedp.Click("#rejoin"))
	waitFor(t, 30*time.Second, "connected after Rejoin with the camera allowed", func() bool { return state(doctor) == "connected" })
	waitFor(t, 30*time.Second, "the home's video after Rejoin", func() bool { return framesDecoded(t, doctor) > 0 })
	waitFor(t, 20*time.Second, "the consultant's sound on the home's page after Rejoin", func() bool { return inboundAudio(home) > heard+50 })
	if got := textOf(t, doctor, "call-trouble"); got != "" && visible(t, doctor, "call-trouble") {
		t.Errorf("the trouble box still says %q after a good Rejoin", got)
	}

	// The buttons together decide what is sent: camera off, then audio
	// only and back, leaves the camera off; camera on brings it back.
	cameraOn := func() bool {
		return js[bool](t, doctor, `document.getElementById("local").srcObject.getVideoTracks().every((t) => t.enabled)`)
	}
	for _, step := range []struct {
		click string
		on    bool
	}{{"#camera", false}, {"#audio-only", false}, {"#audio-only", false}, {"#camera", true}, {"#audio-only", false}, {"#audio-only", true}} {
		within(t, doctor, 5*time.Second, chromedp.Click(step.click))
		if got := cameraOn(); got != step.on {
			t.Fatalf("after %s (camera %q, audio only %q): camera sending %v, want %v", step.click,
				textOf(t, doctor, "camera"), textOf(t, doctor, "audio-only"), got, step.on)
		}
	}
}

// failICEServersOnce makes the tab's next fetch of a call's ICE servers
// answer 503, as when the store is down, and the ones after it go through.
const failICEServersOnce = `(() => {
	const real = window.fetch.bind(window);
	let fail = 1;
	window.fetch = (u, o) => {
		if (String(u).endsWith("/ice-servers") && fail > 0) {
			fail--;
			return Promise.resolve(new Response(JSON.stringify({ error: { code: "store_unavailable", message: "The store is unavailable." } }), { status: 503, headers: { "Content-Type": "application/json" } }));
		}
		return real(u, o);
	};
	return true;
})()`

// unplug ends the page's local track of a kind as a device unplugged mid-call
// does: the track is ended and its ended event fires (a track the page
// stops itself fires none). It returns the ended track's id.
func unplug(kind string) string {
	return `(() => {
		const t = document.getElementById("local").srcObject.get` + kind + `Tracks()[0];
		t.stop();
		t.dispatchEvent(new Event("ended"));
		return t.id;
	})()`
}

// TestACallPageRecoversFromAFailedStartAndALostCamera: the home's call
// cannot fetch its ICE servers (the store down a moment): the page says so,
// with Rejoin and the phone, and Rejoin joins. Mid-call the home's camera
// stops by itself (unplugged): the page starts it again on the same slot,
// and the consultant sees the home again. When it cannot be started again,
// the page says what the others miss, and the call goes on with its sound.
func TestACallPageRecoversFromAFailedStartAndALostCamera(t *testing.T) {
	home, doctor, _ := acceptFromTheConsole(t, failICEServersOnce, "")
	state := func(tab context.Context) string { return callState(t, tab) }

	// The home's start fails on its ICE servers: the reason, Rejoin, the phone.
	waitText(t, home, "status", "Could not join the video call", 20*time.Second)
	if got := textOf(t, home, "call-trouble"); !strings.Contains(got, "store is unavailable") || !strings.Contains(got, "Rejoin") {
		t.Errorf("the home's trouble box says %q, want the reason and Rejoin", got)
	}
	if !visible(t, home, "rejoin") || visible(t, home, "leave") {
		t.Fatal("a start that could not fetch its ICE servers offers no Rejoin")
	}
	if !js[bool](t, home, `!!document.querySelector("#call-trouble a.phone[href^='tel:']")`) {
		t.Error("the trouble box after a failed start gives no number to phone")
	}
	if got := state(home); got != "none" {
		t.Errorf("the home's peer connection is %q after a failed start, want none", got)
	}
	if n := js[int](t, home, `document.getElementById("local").srcObject ? document.getElementById("local").srcObject.getTracks().filter((t) => t.readyState === "live").length : 0`); n != 0 {
		t.Errorf("%d of the home's camera tracks still live after its start failed", n)
	}
	within(t, home, 5*time.Second, chromedp.Click("#rejoin"))
	waitFor(t, 30*time.Second, "the home connected after Rejoin", func() bool { return state(home) == "connected" })
	waitFor(t, 30*time.Second, "the home's video on the console", func() bool { return framesDecoded(t, doctor) > 30 })

	// The camera is unplugged: the picture stops, then comes back on a new track.
	lost := js[string](t, home, unplug("Video"))
	waitFor(t, 15*time.Second, "a new camera track on the home's page", func() bool {
		return js[bool](t, home, `document.getElementById("local").srcObject.getVideoTracks().some((t) => t.id !== "`+lost+`" && t.readyState === "live")`)
	})
	after := framesDecoded(t, doctor)
	waitFor(t, 20*time.Second, "the home's video on the console after its camera came back", func() bool { return framesDecoded(t, doctor) > after+30 })
	waitFor(t, 5*time.Second, "the trouble box cleared", func() bool { return !visible(t, home, "call-trouble") })
	if got := js[string](t, home, `(document.getElementById("call-notices") || {}).textContent || ""`); !strings.Contains(got, "camera stopped and was started again") {
		t.Errorf("the home's notices say %q, want the camera restarted", got)
	}

	// A webcam with its microphone unplugged for good: the camera cannot be
	// started again, the microphone can. The page says what the others miss
	// (the microphone's recovery does not take that away); the call stays,
	// with sound.
	js[bool](t, home, `(() => {
		const md = navigator.mediaDevices, real = md.getUserMedia.bind(md);
		md.getUserMedia = (c) => c.video ? Promise.reject(new DOMException("Requested device not found", "NotFoundError"))
			: new Promise((res) => setTimeout(res, 500)).then(() => real(c));
		return true;
	})()`)
	js[string](t, home, unplug("Video"))
	lostMic := js[string](t, home, unplug("Audio"))
	waitFor(t, 15*time.Second, "the home's microphone started again", func() bool {
		return js[bool](t, home, `document.getElementById("local").srcObject.getAudioTracks().some((t) => t.id !== "`+lostMic+`" && t.readyState === "live")`)
	})
	waitFor(t, 5*time.Second, "the microphone's notice", func() bool {
		return strings.Contains(js[string](t, home, `(document.getElementById("call-notices") || {}).textContent || ""`), "microphone stopped and was started again")
	})
	if got := textOf(t, home, "call-trouble"); !visible(t, home, "call-trouble") || !strings.Contains(got, "camera stopped and could not be started again") || !strings.Contains(got, "cannot see you") {
		t.Errorf("the home's trouble box says %q (shown %v), want the camera gone and what the others miss", got, visible(t, home, "call-trouble"))
	}
	if got := state(home); got != "connected" {
		t.Errorf("the home's call is %q after its camera was lost, want still connected", got)
	}
	if !visible(t, home, "leave") {
		t.Error("the home's call offers no Leave after its camera was lost")
	}
	heard := js[int](t, doctor, `NightcallCall.report().then((r) => r.streams.filter((s) => s.type === "inbound-rtp" && s.kind === "audio").reduce((n, s) => n + s.packets, 0))`)
	waitFor(t, 20*time.Second, "the home's sound on the console after its microphone came back", func() bool {
		return js[int](t, doctor, `NightcallCall.report().then((r) => r.streams.filter((s) => s.type === "inbound-rtp" && s.kind === "audio").reduce((n, s) => n + s.packets, 0))`) > heard+50
	})
}
