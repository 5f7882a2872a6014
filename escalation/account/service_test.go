package account_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/account"
	"github.com/nightcall-health/nightcall/events/argon2id"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

// homes is the part of the escalation service the rules ask: one active
// home, and the creations it was told of.
type homes struct{ created []escalation.UserCreated }

func (h *homes) CheckCareHome(_ context.Context, id escalation.CareHomeID) error {
	if id != "rose-court" {
		return &escalation.InputError{Kind: escalation.KindInvalidValue, Field: "care_home_id", Message: "no such home"}
	}
	return nil
}

func (h *homes) RecordUserCreated(_ context.Context, _ escalation.Meta, u escalation.UserCreated) error {
	h.created = append(h.created, u)
	return nil
}

func newService(t *testing.T) (*account.Service, *homes) {
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "a.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h := &homes{}
	svc, err := account.New(account.Config{Store: s, Hasher: argon2id.Hasher{}, Domain: h})
	if err != nil {
		t.Fatal(err)
	}
	return svc, h
}

func TestCreateValidates(t *testing.T) {
	svc, h := newService(t)
	ok := account.Input{Username: "night.rose", Name: "Nina", Role: "carehome", CareHomeID: "rose-court", Password: "twelve chars!"}
	for _, tc := range []struct {
		name  string
		edit  func(*account.Input)
		field string
	}{
		{"no username", func(in *account.Input) { in.Username = "" }, "username"},
		{"upper case", func(in *account.Input) { in.Username = "Night" }, "username"},
		{"no name", func(in *account.Input) { in.Name = "  " }, "name"},
		{"unknown role", func(in *account.Input) { in.Role = "nurse" }, "role"},
		{"staff without a home", func(in *account.Input) { in.CareHomeID = "" }, "care_home_id"},
		{"consultant with a home", func(in *account.Input) { in.Role = "consultant" }, "care_home_id"},
		{"short password", func(in *account.Input) { in.Password = "short" }, "password"},
		{"unknown home", func(in *account.Input) { in.CareHomeID = "elm-house" }, "care_home_id"},
	} {
		in := ok
		tc.edit(&in)
		_, err := svc.Create(context.Background(), escalation.Meta{}, in)
		var ie *escalation.InputError
		if !errors.As(err, &ie) || ie.Field != tc.field {
			t.Errorf("%s: %v, want an input error on %s", tc.name, err, tc.field)
		}
	}
	acct, err := svc.Create(context.Background(), escalation.Meta{}, ok)
	if err != nil || acct.PasswordHash != "" || acct.Role != escalation.RoleCareHome {
		t.Fatalf("create: %+v, %v", acct, err)
	}
	if len(h.created) != 1 || h.created[0].Username != "night.rose" {
		t.Fatalf("creation recorded as %+v", h.created)
	}
	if _, err := svc.Create(context.Background(), escalation.Meta{}, ok); !errors.Is(err, escalation.ErrDuplicate) {
		t.Fatalf("second create: %v, want a duplicate", err)
	}
}

func TestAuthenticateDisableAndPassword(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	in := account.Input{Username: "dr.okafor", Name: "Dr Okafor", Role: "consultant", Password: "correct horse battery"}
	if _, err := svc.Create(ctx, escalation.Meta{}, in); err != nil {
		t.Fatal(err)
	}
	if a, err := svc.Authenticate(ctx, "dr.okafor", in.Password); err != nil || a.Username != "dr.okafor" {
		t.Fatalf("sign in: %+v, %v", a, err)
	}
	for _, bad := range [][2]string{{"dr.okafor", "wrong password!"}, {"nobody", in.Password}} {
		if _, err := svc.Authenticate(ctx, bad[0], bad[1]); !errors.Is(err, account.ErrBadCredentials) {
			t.Errorf("sign in as %s: %v, want ErrBadCredentials", bad[0], err)
		}
	}
	if err := svc.SetDisabled(ctx, "dr.okafor", true); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, "dr.okafor", in.Password); !errors.Is(err, account.ErrBadCredentials) {
		t.Fatalf("a disabled account signs in: %v", err)
	}
	if err := svc.SetDisabled(ctx, "dr.okafor", false); err != nil {
		t.Fatal(err)
	}
	var ie *escalation.InputError
	if err := svc.ChangePassword(ctx, "dr.okafor", "short"); !errors.As(err, &ie) {
		t.Fatalf("short new password: %v", err)
	}
	if err := svc.ChangePassword(ctx, "dr.okafor", "a new long password"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, "dr.okafor", in.Password); !errors.Is(err, account.ErrBadCredentials) {
		t.Fatal("the old password still works")
	}
	if _, err := svc.Authenticate(ctx, "dr.okafor", "a new long password"); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	if err := svc.ChangePassword(ctx, "nobody", "a new long password"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("password of nobody: %v", err)
	}
}
