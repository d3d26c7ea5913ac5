// Package webhook sends signed webhook notifications: the Standard
// Webhooks signature scheme (https://www.standardwebhooks.com), the
// address policy that keeps notifications away from the orchestrator's own
// network (SSRF), and a Sender whose HTTP client enforces that policy on
// the address it actually connects to.
//
// Signing: each message has an id (webhook-id), a Unix timestamp in
// seconds (webhook-timestamp) and a body; the signature (webhook-signature)
// is "v1," followed by the base64 HMAC-SHA256 of "id.timestamp.body" with
// the secret's key. A secret is written "whsec_" followed by the base64 of
// its key (24 to 64 bytes).
//
// Address policy: only http and https URLs; loopback, private (RFC 1918,
// unique-local IPv6), link-local (which holds the cloud metadata address
// 169.254.169.254), CGNAT (100.64.0.0/10), unspecified, multicast and
// other special-purpose addresses are refused, as is the host "localhost"
// (and *.localhost). CheckURL applies the policy to a URL's literal address
// or name without resolving it; the Sender applies it again to every
// address it dials, after name resolution, so that a name that resolves
// (or later rebinds) to a refused address is refused too. AllowPrivate
// turns the policy off (tests on loopback, private deployments).
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every secret.
const SecretPrefix = "whsec_"

// Secret key length bounds, in bytes, from the Standard Webhooks spec.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// ParseSecret decodes a secret written "whsec_<base64 of the key>" and
// returns the key. The key must be 24 to 64 bytes.
func ParseSecret(s string) ([]byte, error) {
	enc, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("must start with %q", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, errors.New("must be \"whsec_\" followed by standard base64")
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("key must be %d to %d bytes, got %d", MinSecretBytes, MaxSecretBytes, len(key))
	}
	return key, nil
}

// Sign returns the webhook-signature header value of a message: "v1,"
// and the base64 HMAC-SHA256, with key, of "id.timestamp.body" (the
// timestamp in Unix seconds).
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// ErrRefused is matched by the errors of targets the address policy refuses.
var ErrRefused = errors.New("webhook target refused")

// refusedError says why a target is refused.
type refusedError struct{ reason string }

func (e *refusedError) Error() string        { return e.reason }
func (e *refusedError) Is(target error) bool { return target == ErrRefused }

func refused(format string, args ...any) error {
	return &refusedError{reason: fmt.Sprintf(format, args...)}
}

// special are the address ranges refused besides what netip classifies
// (loopback, private, link-local, multicast, unspecified).
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),         // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),     // CGNAT (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),      // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),     // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),       // reserved, broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),    // local-use NAT64
	netip.MustParsePrefix("100::/64"),          // discard-only
	netip.MustParsePrefix("2001:db8::/32"),     // documentation
	netip.MustParsePrefix("fec0::/10"),         // deprecated site-local
	netip.MustParsePrefix("fd00:ec2::254/128"), // AWS metadata over IPv6 (also in fc00::/7)
}

// CheckAddr returns an error wrapping ErrRefused when the policy refuses
// ip: loopback, private, link-local (169.254.169.254, the cloud metadata
// address, included), CGNAT, unspecified, multicast or another special
// range. An IPv4 address mapped into IPv6 (::ffff:a.b.c.d), or embedded in
// the NAT64 prefix 64:ff9b::/96, is judged as that IPv4 address.
func CheckAddr(ip netip.Addr) error {
	ip = ip.Unmap()
	if ip.Is6() && netip.MustParsePrefix("64:ff9b::/96").Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	switch {
	case !ip.IsValid():
		return refused("invalid address")
	case ip.IsLoopback():
		return refused("%s is a loopback address", ip)
	case ip.IsPrivate():
		return refused("%s is a private address", ip)
	case ip.IsLinkLocalUnicast():
		return refused("%s is a link-local address (cloud metadata lives there)", ip)
	case ip.IsUnspecified():
		return refused("%s is the unspecified address", ip)
	case ip.IsMulticast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast():
		return refused("%s is a multicast address", ip)
	}
	for _, p := range special {
		if p.Contains(ip) {
			return refused("%s is in the special-purpose range %s", ip, p)
		}
	}
	return nil
}

// CheckURL checks a target URL without resolving it: http or https, a
// host, and, when the host is a literal address, an address the policy
// allows; "localhost" and names under ".localhost" are refused. A name is
// accepted whether or not it resolves: the Sender checks the addresses it
// resolves to when it connects. With allowPrivate only the scheme and host
// are checked. Policy errors wrap ErrRefused.
func CheckURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("must be an http or https URL")
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("must name a host")
	}
	if allowPrivate {
		return nil
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return refused("%s is a loopback name", host)
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		if ip.Zone() != "" {
			return refused("%s has an IPv6 zone", host)
		}
		return CheckAddr(ip)
	}
	if looksNumeric(name) {
		// 2130706433, 0x7f.1, 017700000001: forms that some resolvers turn
		// into addresses; never a real host name.
		return refused("%s is a numeric host that is not a dotted IPv4 address", host)
	}
	return nil
}

// looksNumeric reports whether a host name's last label is all digits or a
// hex number, as in the non-dotted-quad IPv4 forms.
func looksNumeric(name string) bool {
	last := name
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		last = name[i+1:]
	}
	if last == "" {
		return false
	}
	if strings.HasPrefix(last, "0x") {
		return true
	}
	for _, c := range last {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
