package account

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/nightcall-health/nightcall/escalation"
)

// Hasher makes and checks password hashes (argon2id in events/argon2id).
type Hasher interface {
	// Hash returns a new salted hash of password.
	Hash(password string) (string, error)
	// Check reports whether password matches hash; a malformed hash is false.
	Check(hash, password string) bool
}

// Domain is what the rules need from the escalation service (which
// *escalation.Service implements): that a care home exists, and a place to
// record an account's creation as an event.
type Domain interface {
	CheckCareHome(ctx context.Context, id escalation.CareHomeID) error
	RecordUserCreated(ctx context.Context, meta escalation.Meta, u escalation.UserCreated) error
}

// Config configures a Service.
type Config struct {
	// Store keeps the accounts and sessions. Required.
	Store Store
	// Hasher hashes passwords. Required.
	Hasher Hasher
	// Domain checks homes and records creations. Required.
	Domain Domain
}

// Validate lists every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("account: Config.Store is required"))
	}
	if c.Hasher == nil {
		errs = append(errs, errors.New("account: Config.Hasher is required"))
	}
	if c.Domain == nil {
		errs = append(errs, errors.New("account: Config.Domain is required"))
	}
	return errors.Join(errs...)
}

// Service applies the account rules.
type Service struct {
	cfg Config
	// dummy is checked when the user does not exist, so that a bad username
	// takes as long as a bad password. It is made on first use, not at start.
	dummy func() string
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg}
	s.dummy = sync.OnceValue(func() string { h, _ := cfg.Hasher.Hash("nightcall-no-such-user"); return h })
	return s, nil
}

// Store returns the account store.
func (s *Service) Store() Store { return s.cfg.Store }

// Input is a new account as asked for.
type Input struct {
	Username   string `json:"username"`
	Name       string `json:"name"`
	Role       string `json:"role"`
	CareHomeID string `json:"care_home_id"`
	// CareHomeIDs are the homes a GP is bound to (role gp only, one or more).
	CareHomeIDs []string `json:"care_home_ids"`
	Password    string   `json:"password"`
	// Phone is optional, E.164 (+ and 8 to 15 digits, no spaces).
	Phone string `json:"phone"`
}

// e164RE is an E.164 number: +, a country code that does not start with 0,
// and at most 15 digits in all.
var e164RE = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,39}$`)

// MinPasswordLength is the shortest password a real account may have.
const MinPasswordLength = 12

func inputErr(kind escalation.ErrorKind, field, msg string) error {
	return &escalation.InputError{Kind: kind, Field: field, Message: msg}
}

// Validate checks in without touching any store: every rule but the
// existence of the care home and the uniqueness of the username.
func (in Input) Validate() error {
	switch {
	case in.Username == "":
		return inputErr(escalation.KindMissingField, "username", "give a username")
	case !usernameRE.MatchString(in.Username):
		return inputErr(escalation.KindInvalidValue, "username", "usernames are 2–40 lower-case letters, digits, dots, dashes or underscores")
	case strings.TrimSpace(in.Name) == "":
		return inputErr(escalation.KindMissingField, "name", "give the person's name")
	case !escalation.Role(in.Role).Valid():
		return inputErr(escalation.KindInvalidValue, "role", "role must be carehome, consultant, auditor, admin or gp")
	case escalation.Role(in.Role) == escalation.RoleCareHome && in.CareHomeID == "":
		return inputErr(escalation.KindMissingField, "care_home_id", "care-home staff belong to a home")
	case escalation.Role(in.Role) != escalation.RoleCareHome && in.CareHomeID != "":
		return inputErr(escalation.KindInvalidValue, "care_home_id", "only care-home staff belong to a home")
	case escalation.Role(in.Role) == escalation.RoleGP && len(in.CareHomeIDs) == 0:
		return inputErr(escalation.KindMissingField, "care_home_ids", "a GP is bound to one or more care homes")
	case escalation.Role(in.Role) != escalation.RoleGP && len(in.CareHomeIDs) > 0:
		return inputErr(escalation.KindInvalidValue, "care_home_ids", "only GPs are bound to care homes by care_home_ids")
	case in.Phone != "" && !e164RE.MatchString(in.Phone):
		return inputErr(escalation.KindInvalidValue, "phone", "give the phone number in E.164 form: + and the country code, no spaces (for example +447700900123)")
	}
	return validPassword(in.Password)
}

func validPassword(p string) error {
	if len(p) < MinPasswordLength {
		return inputErr(escalation.KindInvalidValue, "password", "passwords are at least 12 characters")
	}
	return nil
}

// Create validates and creates an account, hashing its password, and records
// its creation (never the secret) as an event. The account comes back
// without its hash. A taken username is an *escalation.DuplicateError.
func (s *Service) Create(ctx context.Context, meta escalation.Meta, in Input) (Account, error) {
	if err := in.Validate(); err != nil {
		return Account{}, err
	}
	if in.CareHomeID != "" {
		if err := s.cfg.Domain.CheckCareHome(ctx, escalation.CareHomeID(in.CareHomeID)); err != nil {
			return Account{}, err
		}
	}
	gpHomes, err := s.checkGPHomes(ctx, in.CareHomeIDs)
	if err != nil {
		return Account{}, err
	}
	hash, err := s.cfg.Hasher.Hash(in.Password)
	if err != nil {
		return Account{}, err
	}
	acct := Account{Username: escalation.Username(in.Username), Name: in.Name, Role: escalation.Role(in.Role),
		CareHomeID: escalation.CareHomeID(in.CareHomeID), CareHomeIDs: gpHomes, Phone: in.Phone, PasswordHash: hash}
	if err := s.cfg.Store.CreateUser(ctx, acct); errors.Is(err, ErrExists) {
		return Account{}, &escalation.DuplicateError{Field: "username", Message: "this username is taken"}
	} else if err != nil {
		return Account{}, err
	}
	err = s.cfg.Domain.RecordUserCreated(ctx, meta, escalation.UserCreated{Username: acct.Username, Role: acct.Role, CareHomeID: acct.CareHomeID, CareHomeIDs: acct.CareHomeIDs})
	if err != nil && !errors.Is(err, escalation.ErrDuplicate) {
		return Account{}, err
	}
	acct.PasswordHash = ""
	return acct, nil
}

// checkGPHomes checks that each home a GP is bound to is active, and drops
// repeats; the field at fault is care_home_ids.
func (s *Service) checkGPHomes(ctx context.Context, ids []string) ([]escalation.CareHomeID, error) {
	var out []escalation.CareHomeID
	for _, id := range ids {
		h := escalation.CareHomeID(id)
		if slices.Contains(out, h) {
			continue
		}
		if err := s.cfg.Domain.CheckCareHome(ctx, h); err != nil {
			var ie *escalation.InputError
			if errors.As(err, &ie) {
				return nil, &escalation.InputError{Kind: ie.Kind, Field: "care_home_ids", Message: ie.Message}
			}
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// Authenticate checks a sign-in and returns the account. An unknown user, a
// wrong password and a disabled account are all ErrBadCredentials, and an
// unknown user costs one hash check like the others.
func (s *Service) Authenticate(ctx context.Context, username, password string) (Account, error) {
	acct, err := s.cfg.Store.UserByName(ctx, escalation.Username(username))
	switch {
	case errors.Is(err, ErrNotFound):
		s.cfg.Hasher.Check(s.dummy(), password)
		return Account{}, ErrBadCredentials
	case err != nil:
		return Account{}, err
	}
	if !s.cfg.Hasher.Check(acct.PasswordHash, password) || acct.Disabled {
		return Account{}, ErrBadCredentials
	}
	return acct, nil
}

// SetDisabled disables (revoking every session at once) or enables an
// account; ErrNotFound if there is none.
func (s *Service) SetDisabled(ctx context.Context, username escalation.Username, disabled bool) error {
	return s.cfg.Store.SetDisabled(ctx, username, disabled)
}

// ChangePassword validates and sets a new password, revoking every session
// of the account; ErrNotFound if there is none.
func (s *Service) ChangePassword(ctx context.Context, username escalation.Username, password string) error {
	if err := validPassword(password); err != nil {
		return err
	}
	hash, err := s.cfg.Hasher.Hash(password)
	if err != nil {
		return err
	}
	return s.cfg.Store.SetPasswordHash(ctx, username, hash)
}
