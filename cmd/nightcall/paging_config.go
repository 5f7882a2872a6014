package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
)

// storeWrapper wraps the store the pager writes through (tests make its
// writes fail with it).
type storeWrapper func(events.Store) events.Store

// defaultPushHosts is --push-allowed-hosts when not given: the major
// browsers' push services.
func defaultPushHosts() string { return strings.Join(escalation.DefaultPushHosts, ",") }

// validatePaging checks the push, webhook and join-timeout flags.
func (c serveConfig) validatePaging() []error {
	var errs []error
	if _, err := escalation.ParsePushHosts(c.PushAllowedHosts); err != nil {
		errs = append(errs, fmt.Errorf("--push-allowed-hosts: %w", err))
	}
	if c.PushSubject != "" && !strings.HasPrefix(c.PushSubject, "mailto:") && !strings.HasPrefix(c.PushSubject, "https://") {
		errs = append(errs, fmt.Errorf("--push-subject %q: must be a mailto: address or an https URL", c.PushSubject))
	}
	if c.PageWebhook != "" {
		if u, err := url.Parse(c.PageWebhook); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--page-webhook %q: must be an http or https URL", c.PageWebhook))
		}
		if c.PageWebhookSecret == "" {
			errs = append(errs, errors.New("--page-webhook needs --page-webhook-secret (the gateway checks the signature with it)"))
		}
	} else if c.PageWebhookSecret != "" {
		errs = append(errs, errors.New("--page-webhook-secret is set without --page-webhook"))
	}
	if c.JoinTimeout < 0 {
		errs = append(errs, errors.New("--join-timeout must not be negative"))
	}
	return errs
}

// pushSubject is the VAPID contact: --push-subject, else the first public
// origin, else a placeholder that push services accept.
func (c serveConfig) pushSubject() string {
	if c.PushSubject != "" {
		return c.PushSubject
	}
	for _, o := range c.PublicOrigins {
		if strings.HasPrefix(o, "https://") {
			return o
		}
	}
	return "mailto:nightcall-operator@invalid.example"
}
