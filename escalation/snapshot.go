package escalation

import (
	"bytes"
	"context"
	"crypto/sha1" // #nosec G505 -- FHIR's Attachment.hash is SHA-1 by definition; integrity is checked with SHA-256
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// Snapshots (a still of a wound, a rash, a swollen leg, taken by the
// consultant from the home's video) and the call's fall-back to the phone.
//
// A snapshot is at most 2 MiB; the event store holds payloads of about
// 1 MiB, so the image is not put in the resident's stream: its bytes go to a
// stream of their own, snapshot-{id}, as parts of at most 512 KiB (base64 in
// JSON: under 700 KiB each) in one atomic append, and snapshot.taken in the
// resident stream refers to that stream with the image's SHA-256. The blob
// is written first: if the reference cannot be appended after it (the call
// ended in between), the blob stays unreferenced and unreachable.

// Event types.
const (
	TypeSnapshotTaken       = "snapshot.taken"
	TypeSnapshotBlobStored  = "snapshot.blob_stored"
	TypeCallFellBackToPhone = "call.fell_back_to_phone"
)

// SnapshotID names a snapshot.
type SnapshotID string

// ImageType is a snapshot's media type, decided from its content.
type ImageType string

// The image types a snapshot may be.
const (
	ImageJPEG ImageType = "image/jpeg"
	ImagePNG  ImageType = "image/png"
)

// Snapshot limits.
const (
	// MaxSnapshotBytes bounds an image.
	MaxSnapshotBytes = 2 << 20
	// maxSnapshotSide bounds each dimension: no camera in a call sends more.
	maxSnapshotSide = 8192
	// snapshotPart is the largest piece of an image in one event.
	snapshotPart = 512 << 10
)

var (
	// ErrNotAnImage is a snapshot that is not a JPEG or PNG by its content.
	ErrNotAnImage = errors.New("not a JPEG or PNG image")
	// ErrSnapshotTooLarge is a snapshot over MaxSnapshotBytes.
	ErrSnapshotTooLarge = errors.New("the image is over 2 MiB")
	// ErrNoCall means no call is in progress for the escalation.
	ErrNoCall = errors.New("no call is in progress")
	// ErrSnapshotDamaged means a stored image does not match its hash.
	ErrSnapshotDamaged = errors.New("the stored image does not match its hash")
)

// SnapshotStream is the stream holding a snapshot's bytes.
func SnapshotStream(id SnapshotID) string { return "snapshot-" + string(id) }

// SnapshotTaken (resident stream): the consultant took a still during the call.
type SnapshotTaken struct {
	EscalationID EscalationID `json:"escalation_id"`
	SnapshotID   SnapshotID   `json:"snapshot_id"`
	ContentType  ImageType    `json:"content_type"`
	Bytes        int          `json:"bytes"`
	Width        int          `json:"width"`
	Height       int          `json:"height"`
	// SHA256 (hex) is checked on every read; SHA1 (base64) is FHIR's hash.
	SHA256  string   `json:"sha256"`
	SHA1    string   `json:"sha1"`
	Stream  string   `json:"stream"`
	Parts   int      `json:"parts"`
	TakenBy Username `json:"taken_by"`
}

// SnapshotBlobStored (snapshot-{id} stream): one part of an image's bytes.
type SnapshotBlobStored struct {
	SnapshotID SnapshotID `json:"snapshot_id"`
	Part       int        `json:"part"`
	Parts      int        `json:"parts"`
	Data       []byte     `json:"data"`
}

// CallFellBackToPhone (resident stream): a participant gave up on the video
// and continues by phone.
type CallFellBackToPhone struct {
	EscalationID EscalationID `json:"escalation_id"`
	By           CallRole     `json:"by"`
}

func (SnapshotTaken) EventType() string       { return TypeSnapshotTaken }
func (SnapshotBlobStored) EventType() string  { return TypeSnapshotBlobStored }
func (CallFellBackToPhone) EventType() string { return TypeCallFellBackToPhone }

func init() {
	register(
		func() Event { return &SnapshotTaken{} },
		func() Event { return &SnapshotBlobStored{} },
		func() Event { return &CallFellBackToPhone{} },
	)
}

// Snapshot is a still attached to an escalation, as the case shows it.
type Snapshot struct {
	ID          SnapshotID `json:"id"`
	TakenAt     time.Time  `json:"taken_at"`
	ContentType ImageType  `json:"content_type"`
	Bytes       int        `json:"bytes"`
	Width       int        `json:"width"`
	Height      int        `json:"height"`
	TakenBy     Username   `json:"taken_by"`
	// SHA1 is the image's SHA-1, base64 (FHIR Attachment.hash).
	SHA1 string `json:"-"`
	// sha256 and stream find and check the bytes.
	sha256 string
	stream string
}

// escalationFact is an event about one escalation that apply hands to it.
type escalationFact interface {
	escalationID() EscalationID
	applyTo(e *EscalationView, at time.Time)
}

func (e *SnapshotTaken) escalationID() EscalationID { return e.EscalationID }

func (e *SnapshotTaken) applyTo(esc *EscalationView, at time.Time) {
	esc.Snapshots = append(esc.Snapshots, Snapshot{ID: e.SnapshotID, TakenAt: at, ContentType: e.ContentType, Bytes: e.Bytes,
		Width: e.Width, Height: e.Height, TakenBy: e.TakenBy, SHA1: e.SHA1, sha256: e.SHA256, stream: e.Stream})
	esc.Timeline = append(esc.Timeline, TimelineEntry{At: at, Type: TypeSnapshotTaken,
		Detail: fmt.Sprintf("photo taken by %s (%s, %d×%d)", e.TakenBy, e.ContentType, e.Width, e.Height)})
}

func (e *CallFellBackToPhone) escalationID() EscalationID { return e.EscalationID }

func (e *CallFellBackToPhone) applyTo(esc *EscalationView, at time.Time) {
	esc.Timeline = append(esc.Timeline, TimelineEntry{At: at, Type: TypeCallFellBackToPhone, Detail: "continued by phone (" + string(e.By) + ")"})
}

// applyFact applies an escalation fact to its escalation; other events are
// not facts and change nothing.
func (v *ResidentView) applyFact(ev Event, at time.Time) {
	if f, ok := ev.(escalationFact); ok {
		if esc := v.escalation(f.escalationID()); esc != nil {
			f.applyTo(esc, at)
		}
	}
}

// CheckImage decides a snapshot's type from its content (the magic bytes,
// then the decoder's own header check) and reads its size.
func CheckImage(data []byte) (ImageType, image.Config, error) {
	if len(data) > MaxSnapshotBytes {
		return "", image.Config{}, ErrSnapshotTooLarge
	}
	var typ ImageType
	var cfg image.Config
	var err error
	switch {
	case bytes.HasPrefix(data, []byte("\xff\xd8\xff")):
		typ = ImageJPEG
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		typ = ImagePNG
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
	default:
		return "", image.Config{}, ErrNotAnImage
	}
	if err != nil {
		return "", image.Config{}, fmt.Errorf("%w: %w", ErrNotAnImage, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxSnapshotSide || cfg.Height > maxSnapshotSide {
		return "", image.Config{}, fmt.Errorf("%w: %d×%d pixels", ErrNotAnImage, cfg.Width, cfg.Height)
	}
	return typ, cfg, nil
}

// callInProgress reports whether the escalation's call has started and not
// ended, by the call events in its history.
func callInProgress(esc *EscalationView) bool {
	for i := len(esc.Timeline) - 1; i >= 0; i-- {
		switch esc.Timeline[i].Type {
		case TypeCallStarted:
			return true
		case TypeCallEnded:
			return false
		}
	}
	return false
}

// canTakeSnapshot: the accepting consultant, while the escalation is
// accepted and its call is on.
func canTakeSnapshot(esc *EscalationView, by Actor) error {
	switch esc.Status {
	case StatusPaging, StatusUnanswered:
		return ErrNotAccepted
	case StatusDecided, StatusWithdrawn:
		return ErrEscalationClosed
	}
	if by.Role != RoleConsultant || esc.AcceptedBy == nil || esc.AcceptedBy.Username != by.Username {
		return ErrForbidden
	}
	if !callInProgress(esc) {
		return ErrNoCall
	}
	return nil
}

// TakeSnapshot attaches an image to escalation id: its bytes to their own
// stream, then snapshot.taken to the resident's. Only the accepting
// consultant may, during the call; an image that is not a JPEG or PNG, or
// is too large, is refused before anything is stored.
func (s *Service) TakeSnapshot(ctx context.Context, meta Meta, id EscalationID, data []byte) (Snapshot, error) {
	if meta.Actor.Role != RoleConsultant {
		return Snapshot{}, ErrForbidden
	}
	typ, cfg, err := CheckImage(data)
	if err != nil {
		return Snapshot{}, err
	}
	rid, err := s.residentOf(ctx, id)
	if err != nil {
		return Snapshot{}, err
	}
	check := func(r *Resident) error {
		esc := r.escalation(id)
		if esc == nil || !canSeeEscalation(meta.Actor, esc, true, s.cfg.Now()) {
			return ErrNotFound
		}
		return canTakeSnapshot(esc, meta.Actor)
	}
	r, err := s.loadResident(ctx, rid)
	if err != nil {
		return Snapshot{}, err
	}
	if err := check(r); err != nil {
		return Snapshot{}, err
	}

	sid := SnapshotID(s.cfg.NewID())
	sum := sha256.Sum256(data)
	sum1 := sha1.Sum(data) // #nosec G401 -- FHIR Attachment.hash
	parts := (len(data) + snapshotPart - 1) / snapshotPart
	blob := make([]Event, 0, parts)
	for i := 0; i < parts; i++ {
		blob = append(blob, &SnapshotBlobStored{SnapshotID: sid, Part: i + 1, Parts: parts, Data: data[i*snapshotPart : min(len(data), (i+1)*snapshotPart)]})
	}
	now := s.cfg.Now()
	if err := s.repo.appendAny(ctx, SnapshotStream(sid), meta.Actor.Username, now, blob...); err != nil {
		return Snapshot{}, err
	}
	res, err := s.update(ctx, rid, meta, func(r *Resident) error {
		if err := check(r); err != nil {
			return err
		}
		r.record(&SnapshotTaken{EscalationID: id, SnapshotID: sid, ContentType: typ, Bytes: len(data), Width: cfg.Width, Height: cfg.Height,
			SHA256: hex.EncodeToString(sum[:]), SHA1: base64.StdEncoding.EncodeToString(sum1[:]), Stream: SnapshotStream(sid), Parts: parts,
			TakenBy: meta.Actor.Username}, now)
		return nil
	})
	if err != nil {
		return Snapshot{}, err
	}
	for _, sn := range res.Resident.escalation(id).Snapshots {
		if sn.ID == sid {
			return sn, nil
		}
	}
	return Snapshot{}, fmt.Errorf("escalation: snapshot %s not applied", sid)
}

// GetSnapshot returns a snapshot of escalation id and its bytes, for those
// who may read the escalation; every fetch is put on record.
func (s *Service) GetSnapshot(ctx context.Context, a Actor, id EscalationID, sid SnapshotID) (Snapshot, []byte, error) {
	rid, err := s.residentOf(ctx, id)
	if err != nil {
		return Snapshot{}, nil, err
	}
	r, err := s.loadResident(ctx, rid)
	if err != nil {
		return Snapshot{}, nil, err
	}
	esc := r.escalation(id)
	if esc == nil || !canSeeEscalation(a, esc, false, s.cfg.Now()) {
		return Snapshot{}, nil, ErrNotFound
	}
	var sn *Snapshot
	for i := range esc.Snapshots {
		if esc.Snapshots[i].ID == sid {
			sn = &esc.Snapshots[i]
		}
	}
	if sn == nil {
		return Snapshot{}, nil, ErrNotFound
	}
	envs, err := s.cfg.Store.Load(ctx, sn.stream, 0)
	if errors.Is(err, events.ErrStreamNotFound) {
		return Snapshot{}, nil, fmt.Errorf("%w: %s has no bytes", ErrSnapshotDamaged, sid)
	}
	if err != nil {
		return Snapshot{}, nil, err
	}
	data := make([]byte, 0, sn.Bytes)
	for _, env := range envs {
		ev, err := Decode(env)
		if err != nil {
			return Snapshot{}, nil, err
		}
		if part, ok := ev.(*SnapshotBlobStored); ok && part.SnapshotID == sid {
			data = append(data, part.Data...)
		}
	}
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != sn.sha256 {
		return Snapshot{}, nil, fmt.Errorf("%w: %s", ErrSnapshotDamaged, sid)
	}
	// Every fetch goes on record, unthrottled: an image leaves the service
	// each time, unlike a record read again within minutes.
	if err := s.repo.appendAny(ctx, AccessLogStream(), a.Username, s.cfg.Now(),
		&RecordAccessed{Username: a.Username, Role: a.Role, What: "snapshot", ResidentID: rid, EscalationID: id}); err != nil {
		return Snapshot{}, nil, err
	}
	return *sn, data, nil
}

// FallBackToPhone records that a participant continues the call by phone,
// and returns the escalation with the home's fallback number. Staff of the
// home and the accepting consultant may, while the escalation is accepted.
func (s *Service) FallBackToPhone(ctx context.Context, meta Meta, id EscalationID) (*EscalationView, error) {
	var role CallRole
	switch meta.Actor.Role {
	case RoleCareHome:
		role = CallRoleCareHome
	case RoleConsultant:
		role = CallRoleConsultant
	default:
		return nil, ErrForbidden
	}
	now := s.cfg.Now()
	return s.escalationCommand(ctx, meta, id, func(r *Resident, esc *EscalationView) error {
		switch esc.Status {
		case StatusPaging, StatusUnanswered:
			return ErrNotAccepted
		case StatusDecided, StatusWithdrawn:
			return ErrEscalationClosed
		}
		if role == CallRoleConsultant && esc.AcceptedBy.Username != meta.Actor.Username {
			return ErrForbidden
		}
		r.record(&CallFellBackToPhone{EscalationID: id, By: role}, now)
		return nil
	})
}
