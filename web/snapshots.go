package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/nightcall-health/nightcall/escalation"
)

// Snapshots (stills from the home's video) and "continue by phone".

var (
	errNotAnImage       = newErr(http.StatusUnsupportedMediaType, "not_an_image", "The body must be a JPEG or PNG image.")
	errSnapshotTooLarge = newErr(http.StatusRequestEntityTooLarge, "body_too_large", "The image is over 2 MiB.")
	errNoCall           = newErr(http.StatusConflict, "call_not_in_progress", "Photos can be taken only during the call.")
)

// snapshotError maps the snapshot errors; the rest go through toAPIError.
func snapshotError(err error) error {
	switch {
	case errors.Is(err, escalation.ErrNotAnImage):
		return errNotAnImage
	case errors.Is(err, escalation.ErrSnapshotTooLarge):
		return errSnapshotTooLarge
	case errors.Is(err, escalation.ErrNoCall):
		return errNoCall
	}
	return err
}

// snapshotView is the answer to a snapshot taken.
type snapshotView struct {
	ID          escalation.SnapshotID `json:"id"`
	TakenAt     time.Time             `json:"taken_at"`
	ContentType escalation.ImageType  `json:"content_type"`
	Bytes       int                   `json:"bytes"`
	Width       int                   `json:"width"`
	Height      int                   `json:"height"`
}

func viewSnapshot(sn escalation.Snapshot) snapshotView {
	return snapshotView{ID: sn.ID, TakenAt: sn.TakenAt.UTC(), ContentType: sn.ContentType,
		Bytes: sn.Bytes, Width: sn.Width, Height: sn.Height}
}

// handleTakeSnapshot stores a still the accepting consultant took from the
// home's video: the body is the image itself, JPEG or PNG by its content,
// at most 2 MiB. Nothing is stored for a body that is not one, too large,
// a wrong role or a call that is not on.
func (s *Server) handleTakeSnapshot(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleConsultant {
		s.writeError(w, r, errForbidden)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, escalation.MaxSnapshotBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		s.writeError(w, r, errSnapshotTooLarge)
		return
	case err != nil:
		e := newErr(http.StatusBadRequest, "invalid_value", "The request body could not be read.")
		e.Field = "body"
		s.writeError(w, r, e)
		return
	}
	idem, err := newIdem(r, a, body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.replay(w, r, idem) {
		return
	}
	id := escalation.EscalationID(r.PathValue("id"))
	meta := s.meta(r, a)
	meta.Idempotency = idem.record(http.StatusCreated, func(res *escalation.ResidentView) any {
		snaps := res.Escalation(id).Snapshots
		return viewSnapshot(snaps[len(snaps)-1])
	})
	sn, err := s.cfg.Service.TakeSnapshot(r.Context(), meta, id, body)
	if err == nil {
		s.log.InfoContext(r.Context(), "snapshot taken", "escalation_id", id, "snapshot_id", sn.ID, "bytes", sn.Bytes, "content_type", sn.ContentType)
	}
	s.respond(w, r, idem, snapshotError(err), http.StatusCreated, func() any { return viewSnapshot(sn) })
}

// handleGetSnapshot serves a snapshot's image to those who may read the
// escalation; the fetch is on record before a byte is sent.
func (s *Server) handleGetSnapshot(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	id := escalation.EscalationID(r.PathValue("id"))
	sn, data, err := s.cfg.Service.GetSnapshot(r.Context(), *a, id, escalation.SnapshotID(r.PathValue("sid")))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", string(sn.ContentType))
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	w.Header().Set("Content-Disposition", `inline; filename="`+string(sn.ID)+extension(sn.ContentType)+`"`)
	_, _ = w.Write(data) // #nosec G705 -- a JPEG or PNG sniffed at upload, nosniff, CSP sandbox
}

func extension(t escalation.ImageType) string {
	if t == escalation.ImagePNG {
		return ".png"
	}
	return ".jpg"
}

// handlePhoneFallback records call.fell_back_to_phone and answers with the
// other side's number: the consultant's phone for the home, the home's
// fallback number for the consultant.
func (s *Server) handlePhoneFallback(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	var req struct{}
	idem, ok := s.command(w, r, a, &req, true)
	if !ok {
		return
	}
	id := escalation.EscalationID(r.PathValue("id"))
	meta := s.meta(r, a)
	view := func(esc *escalation.EscalationView) any { return s.phoneView(r.Context(), a, esc) }
	meta.Idempotency = idem.record(http.StatusOK, func(res *escalation.ResidentView) any { return view(s.cfg.Service.View(res, id)) })
	esc, err := s.cfg.Service.FallBackToPhone(r.Context(), meta, id)
	if err == nil {
		s.log.InfoContext(r.Context(), "call continued by phone", "escalation_id", id, "role", a.Role)
	}
	s.respond(w, r, idem, err, http.StatusOK, func() any { return view(esc) })
}

// phoneView is whom the caller should phone.
func (s *Server) phoneView(ctx context.Context, a *escalation.Actor, esc *escalation.EscalationView) any {
	out := map[string]any{"escalation_id": esc.ID, "phone": nil}
	if a.Role == escalation.RoleConsultant {
		out["call"] = "carehome"
		out["name"] = s.cfg.Service.Read().Home(esc.CareHomeID).Name
		if esc.FallbackPhone != "" {
			out["phone"] = esc.FallbackPhone
		}
		return out
	}
	out["call"] = "consultant"
	if esc.AcceptedBy != nil {
		out["name"] = esc.AcceptedBy.Name
		if acct, err := s.sessions.account(ctx, string(esc.AcceptedBy.Username)); err == nil && acct.Phone != "" {
			out["phone"] = acct.Phone
		}
	}
	return out
}

// mediaType is FHIR's media-type code system.
const mediaTypeCS = "http://terminology.hl7.org/CodeSystem/media-type"

// addSnapshotMedia adds each snapshot of esc to the bundle as a Media
// resource of the escalation's encounter. The image itself is referenced by
// its URL (where every fetch is on record) with its size and SHA-1, not
// inlined: a bundle stays small and the bytes stay behind the access check.
func addSnapshotMedia(b *bundleBuilder, esc *escalation.EscalationView, res *escalation.ResidentView) error {
	eid := string(esc.ID)
	for _, sn := range esc.Snapshots {
		id := fhirID("escalation", eid, "snapshot", string(sn.ID))
		kind := concept(mediaTypeCS, "image", "Image")
		m := fhir.Media{Id: ptr(id), Status: fhir.EventStatusCompleted, Type: &kind,
			Subject: ref(fhirID("resident", string(res.ID))), Encounter: ref(fhirID("escalation", eid, "encounter")),
			CreatedDateTime: instant(sn.TakenAt), Issued: instant(sn.TakenAt),
			Operator: &fhir.Reference{Display: ptr(string(sn.TakenBy))},
			Width:    ptr(sn.Width), Height: ptr(sn.Height), Frames: ptr(1),
			Content: fhir.Attachment{ContentType: ptr(string(sn.ContentType)), Url: ptr("/api/v1/escalations/" + eid + "/snapshots/" + string(sn.ID)),
				Size: ptr(sn.Bytes), Hash: optional(sn.SHA1), Title: ptr("Photo taken during the video call"), Creation: instant(sn.TakenAt)}}
		if err := b.add(id, m); err != nil {
			return err
		}
	}
	return nil
}
