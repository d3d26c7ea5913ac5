package redact_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/agentorch/orchestrator/internal/redact"
)

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://localhost:6379", "redis://localhost:6379"},
		{"redis://:S3cret@127.0.0.1:6379/2", "redis://:xxxxx@127.0.0.1:6379/2"},
		{"redis://user:S3cret@h:6379", "redis://user:xxxxx@h:6379"},
		{"rediss://default:S3cret@h:6380/0?dial_timeout=3s", "rediss://default:xxxxx@h:6380/0?dial_timeout=3s"},
		{"redis://user@h:6379", "redis://user@h:6379"},
		{"unix://:S3cret@/var/run/redis.sock?db=1", "unix://:xxxxx@/var/run/redis.sock?db=1"},
		{"redis-sentinel://:S3cret@h1:26379,h2:26380/0?master=m", "redis-sentinel://:xxxxx@h1:26379,h2:26380/0?master=m"},
		{"redis-sentinel://h1:26379/0?master=m&sentinel_password=S3cret&password=Other1",
			"redis-sentinel://h1:26379/0?master=m&sentinel_password=xxxxx&password=xxxxx"},
		{"rediss-cluster://:S3cret@h1:7000,h2:7001", "rediss-cluster://:xxxxx@h1:7000,h2:7001"},
		{"redis-cluster://:S3cret@h1:7000,:S3cret@h2:7001", "redis-cluster://:xxxxx@h2:7001"},
		{"redis://h:1/0?PASSWORD=S3cret#frag", "redis://h:1/0?PASSWORD=xxxxx#frag"},
		{"redis://h:1/0?pass%77ord=S3cret", "redis://h:1/0?pass%77ord=xxxxx"},
		{"redis://h:1/0?auth_token=T0ken;x=1", "redis://h:1/0?auth_token=xxxxx;x=1"},
		// Malformed: a password holding '@', '/', '?' or a bad escape.
		{"redis://:p@ss@h:6379/0", "redis://:xxxxx@h:6379/0"},
		{"redis://:S3cr/etPw@h:6379", "redis://:xxxxx@h:6379"},
		{"redis://:S3?cret@h:6379/0", "redis://:xxxxx@h:6379/0"},
		{"redis://:S3cret%zz@h:6379", "redis://:xxxxx@h:6379"},
		{"redis://:S3cret@h:1/0?user=a@b", "redis://:xxxxx@h:1/0?user=a@b"},
		{"postgres://u:S3cret@db:5432/app?sslmode=disable&password=Again1", "postgres://u:xxxxx@db:5432/app?sslmode=disable&password=xxxxx"},
		{"not a url", "not a url"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := redact.URL(tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:S3cret@db/app", "postgres://u:xxxxx@db/app"},
		{"postgresql://u@db/app?password=S3cret", "postgresql://u@db/app?password=xxxxx"},
		{"host=db user=u password=S3cret dbname=app", "host=db user=u password=xxxxx dbname=app"},
		{"host=db password = 'S3 cr\\'et' sslmode=disable", "host=db password = xxxxx sslmode=disable"},
		{"host=db PassWord=S3cret", "host=db PassWord=xxxxx"},
		{"host=db sslpassword=S3cret", "host=db sslpassword=xxxxx"},
		{"host=db password='unterminated S3cret", "host=db password=xxxxx"},
		{"./data/orchestrator.db", "./data/orchestrator.db"},
		{"file:/tmp/o.db?_pragma=busy_timeout(5000)", "file:/tmp/o.db?_pragma=busy_timeout(5000)"},
	}
	for _, tt := range tests {
		if got := redact.DSN(tt.in); got != tt.want {
			t.Errorf("DSN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSecrets(t *testing.T) {
	var s redact.Secrets
	if !s.Empty() || s.String("S3cretPw") != "S3cretPw" {
		t.Fatal("the zero Secrets masks something")
	}
	s.AddURL("redis://:S3cr/et%2FPw@h:6379")
	s.AddDSN("host=db password='Qu0ted pw'")
	s.AddURL("redis://h:1/0?sentinel_password=Sent1nel")
	s.Add("ApiKey-1", "ab") // "ab" is too short to mask in free text
	for _, text := range []string{
		`parse "redis://:S3cr/et%2FPw@h:6379": invalid port ":S3cr" after host`, // a piece of a malformed password
		"auth S3cr/et/Pw failed",         // unescaped
		"password is Qu0ted pw",          // unquoted
		"sentinel_password Sent1nel",     // from the query
		"key ApiKey-1 refused",           // added whole
		"et%2FPw and S3cr/et%2FPw twice", // the whole password and a piece
	} {
		got := s.String(text)
		for _, secret := range []string{"S3cr", "et%2FPw", "Qu0ted", "Sent1nel", "ApiKey-1"} {
			if strings.Contains(got, secret) {
				t.Errorf("String(%q) = %q still holds %q", text, got, secret)
			}
		}
		if !strings.Contains(got, redact.Mask) {
			t.Errorf("String(%q) = %q, nothing masked", text, got)
		}
	}
	if got := s.String("ab cd"); got != "ab cd" {
		t.Errorf("short secret masked: %q", got)
	}

	base := fmt.Errorf("connect: %w", errors.New("dial S3cr/et/Pw: refused"))
	err := s.Error(base)
	if strings.Contains(err.Error(), "S3cr") || !errors.Is(err, base) {
		t.Errorf("Error = %q (Is base: %v)", err, errors.Is(err, base))
	}
	// A short password is masked where the connection string is quoted whole.
	short := "redis://:pw@h:6379/x"
	if got := redact.URLError(&url.Error{Op: "parse", URL: short, Err: errors.New("bad")}, short).Error(); got != `parse "redis://:xxxxx@h:6379/x": bad` {
		t.Errorf("URLError = %s", got)
	}
	if got := redact.DSNError(errors.New("cannot parse host=h password=pw9: x"), "host=h password=pw9").Error(); got != "cannot parse host=h password=xxxxx: x" {
		t.Errorf("DSNError = %s", got)
	}
	clean := errors.New("nothing secret")
	if s.Error(clean) != clean || s.Error(nil) != nil {
		t.Error("Error changed an error without secrets")
	}
}

// stringer is a fmt.Stringer for the handler test.
type stringer string

func (s stringer) String() string { return string(s) }

func TestHandler(t *testing.T) {
	var s redact.Secrets
	s.AddURL("redis://:S3cretPw@h:6379")
	var buf bytes.Buffer
	log := slog.New(s.Handler(slog.NewJSONHandler(&buf, nil)))
	u, _ := url.Parse("redis://:S3cretPw@h:6379")
	log = log.With("pre", "attr S3cretPw").WithGroup("g").With("pre2", errors.New("e S3cretPw"))
	log.Error("message S3cretPw", "str", "v S3cretPw", "err", errors.New("boom S3cretPw"),
		"url", stringer(u.String()), slog.Group("grp", "inner", "S3cretPw"), "n", 42,
		"lazy", slog.AnyValue(errors.New("S3cretPw")))
	out := buf.String()
	if strings.Contains(out, "S3cretPw") {
		t.Errorf("log line holds the password: %s", out)
	}
	for _, want := range []string{`"msg":"message xxxxx"`, `"pre":"attr xxxxx"`, `"pre2":"e xxxxx"`, `"str":"v xxxxx"`,
		`"err":"boom xxxxx"`, `"inner":"xxxxx"`, `"n":42`} {
		if !strings.Contains(out, want) {
			t.Errorf("log line lacks %s: %s", want, out)
		}
	}
	// No secrets: the handler is returned as is.
	h := slog.NewJSONHandler(&buf, nil)
	var none redact.Secrets
	if none.Handler(h) != slog.Handler(h) {
		t.Error("Handler without secrets wraps")
	}
}
