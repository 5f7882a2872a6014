package main

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events/bus"
	"github.com/nightcall-health/nightcall/video"
)

// noticeCall tells the participants of a call hosted here what just
// happened in it: a photo was taken, someone continues by phone. Every
// instance reads the log, so the one hosting the call tells its pages
// whichever instance took the request.
func (a *app) noticeCall(msg *message.Message) error {
	env, err := bus.Decode(msg)
	if err != nil {
		return err
	}
	ev, err := escalation.Decode(env)
	if err != nil || ev == nil {
		return err
	}
	switch e := ev.(type) {
	case *escalation.SnapshotTaken:
		a.sfu.Notify(video.RoomID(e.EscalationID), video.NoticeSnapshotTaken, "The consultant took a photo from the video; it is attached to the escalation.")
	case *escalation.CallFellBackToPhone:
		text := "The consultant will continue by phone."
		if e.By == escalation.CallRoleCareHome {
			text = "The care home will continue by phone."
		}
		a.sfu.Notify(video.RoomID(e.EscalationID), video.NoticePhoneFallback, text)
	}
	return nil
}
