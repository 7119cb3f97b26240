package mdb

import (
	"net/url"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mongodb://alice:s3cret@db:27017/?tls=true", "mongodb://alice:xxxxx@db:27017/?tls=true"},
		{"mongodb://db:27017/", "mongodb://db:27017/"},
		{"mongodb+srv://bob:p%40ss@cluster.example.net/", "mongodb+srv://bob:xxxxx@cluster.example.net/"},
		// Reserved characters in the password, escaped or not.
		{"mongodb://alice:pa/ss@db:27017/", "mongodb://alice:xxxxx@db:27017/"},
		{"mongodb://alice:pa?ss@db:27017/", "mongodb://alice:xxxxx@db:27017/"},
		{"mongodb://alice:p@ss@db:27017/", "mongodb://alice:xxxxx@db:27017/"},
		{"mongodb://alice:pa%2Fss@db:27017/", "mongodb://alice:xxxxx@db:27017/"},
		{"mongodb://alice:a/b?c@d@db/admin?tls=true", "mongodb://alice:xxxxx@db/admin?tls=true"},
		// Secret-bearing options.
		{"mongodb://db/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:FQoGZXIvYXdzE%2Fabc",
			"mongodb://db/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:xxxxx"},
		{"mongodb://db/?authMechanismProperties=SERVICE_NAME:mongodb,AWS_SESSION_TOKEN:tok",
			"mongodb://db/?authMechanismProperties=SERVICE_NAME:mongodb,AWS_SESSION_TOKEN:xxxxx"},
		{"mongodb://db/?tlsCertificateKeyFile=/k.pem&tlsCertificateKeyFilePassword=kpw", "mongodb://db/?tlsCertificateKeyFile=/k.pem&tlsCertificateKeyFilePassword=xxxxx"},
		{"mongodb://db/?proxyUsername=p&proxyPassword=ppw", "mongodb://db/?proxyUsername=p&proxyPassword=xxxxx"},
		{"mongodb://db/?someFutureToken=zzz;replicaSet=rs", "mongodb://db/?someFutureToken=xxxxx&replicaSet=rs"},
		{"mongodb://db/?garbage", "mongodb://db/?xxxxx"},
		// An @ in the query: the user information cannot be told apart.
		{"mongodb://db/?authMechanismProperties=AWS_SESSION_TOKEN:ab@cd", "mongodb://<redacted>"},
		{"http://alice:pw@db/", "<unparsable connection string>"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactText(t *testing.T) {
	msg := `server selection error: dial "mongodb://alice:s3cret@db:27017/" refused; auth error: sasl conversation error`
	got := RedactText(msg)
	if strings.Contains(got, "s3cret") {
		t.Fatalf("password left in %q", got)
	}
	if !strings.Contains(got, "server selection error") || !strings.Contains(got, "sasl conversation error") {
		t.Fatalf("message text lost: %q", got)
	}
	plain := "connection refused"
	if got := RedactText(plain); got != plain {
		t.Fatalf("RedactText(%q) = %q", plain, got)
	}
}

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		in, user, password, canonical string
	}{
		{"mongodb://alice:pa%2Fss@db:27017/admin?replicaSet=rs", "alice", "pa/ss", "mongodb://alice:pa%2Fss@db:27017/admin?replicaSet=rs"},
		{"mongodb://al%40ice:p%3Fw%40x@db1:1,db2:2/", "al@ice", "p?w@x", "mongodb://al%40ice:p%3Fw%40x@db1:1,db2:2"},
		{"mongodb+srv://c.example.net/?srvMaxHosts=2", "", "", "mongodb+srv://c.example.net/?srvMaxHosts=2"},
		{"mongodb://[::1]:27017", "", "", "mongodb://[::1]:27017"},
	} {
		c, err := ParseURI(tc.in)
		if err != nil {
			t.Errorf("ParseURI(%q): %v", tc.in, err)
			continue
		}
		if c.Username != tc.user || c.Password != tc.password || c.String() != tc.canonical {
			t.Errorf("ParseURI(%q) = user %q password %q %q, want %q %q %q", tc.in, c.Username, c.Password, c.String(), tc.user, tc.password, tc.canonical)
		}
		// The canonical form is what the driver and net/url read the same way.
		if c.Scheme == "mongodb" {
			cs, err := connstring.Parse(c.String())
			if err != nil || cs.Username != tc.user || cs.Password != tc.password {
				t.Errorf("driver reads %q as %v %v", c.String(), cs, err)
			}
		}
		if u, err := url.Parse(c.String()); err != nil || u.User.Username() != tc.user {
			t.Errorf("net/url reads %q as %v %v", c.String(), u, err)
		}
	}
	for _, tc := range []struct{ in, secret, want string }{
		{"mongodb://alice:pa/ss@db/", "pa/ss", "percent-encode"},
		{"mongodb://alice:pa?ss@db/", "pa?ss", "percent-encode"},
		{"mongodb://alice:p@ss@db/", "p@ss", "percent-encode"},
		{"mongodb://alice:p:ss@db/", "p:ss", "percent-encode"},
		{"mongodb://alice:p%zzss@db/", "p%zzss", "percent-escape"},
		{"mongodb://db?tls=true", "", "must have a /"},
		{"postgres://db/", "", "must start with"},
		{"mongodb://db:99999/", "", "port"},
		{"mongodb://a,b/?directConnection=true", "", "direct connection"},
		{"mongodb://db/?tlsCertificateKeyFilePassword=secretpw&tls=notabool", "secretpw", "invalid value"},
		{"mongodb://db/?w=0&journal=true&authMechanismProperties=AWS_SESSION_TOKEN:tokentoken", "tokentoken", "write concern"},
		{"mongodb+srv://a.example.net,b.example.net/", "", "exactly one host"},
		{"mongodb+srv://a.example.net:27017/", "", "without a port"},
		{"mongodb://db/\x00", "", "control character"},
		{"mongodb://d b/", "", "control character"},
		{"mongodb://ho$t/", "", "host name"},
		{"mongodb://db/?=x", "", "name=value"},
	} {
		_, err := ParseURI(tc.in)
		if err == nil {
			t.Errorf("ParseURI(%q) accepted", tc.in)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURI(%q) = %v, want it to say %q", tc.in, err, tc.want)
		}
		if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
			t.Errorf("ParseURI(%q) error leaks %q: %v", tc.in, tc.secret, err)
		}
	}
}

func TestSecretValues(t *testing.T) {
	c, err := ParseURI("mongodb://u:pw%2Fx@db/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok%2Fen&appName=app")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(c.SecretValues(), " ")
	for _, want := range []string{"pw/x", "pw%2Fx", "tok/en"} {
		if !strings.Contains(got, want) {
			t.Errorf("SecretValues = %q, missing %q", got, want)
		}
	}
	if strings.Contains(got, "app") {
		t.Errorf("SecretValues = %q has a public value", got)
	}
	if r := c.WithoutUserInfo().String(); strings.Contains(r, "pw") || strings.Contains(r, "u@") {
		t.Errorf("WithoutUserInfo = %q", r)
	}
}

// FuzzRedact checks that no password or secret option value survives
// Redact, whatever the input, and that ParseURI's errors never carry them.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"mongodb://alice:s3cret@db:27017/?tls=true",
		"mongodb://alice:pa/ss@db/",
		"mongodb://alice:pa?ss@db/",
		"mongodb://alice:p@ss@db/",
		"mongodb://alice:pa%2Fss@db/",
		"mongodb+srv://u:p@c.example.net/?authMechanismProperties=AWS_SESSION_TOKEN:tok",
		"mongodb://db/?tlsCertificateKeyFilePassword=kpw&replicaSet=rs",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Redact(s)
		c, err := ParseURI(s)
		if err != nil {
			// Whatever the driver would take as the password must not be in the error.
			if cs, derr := connstring.Parse(strings.Replace(s, "mongodb+srv://", "mongodb://", 1)); derr == nil && len(cs.Password) >= 3 {
				if strings.Contains(err.Error(), cs.Password) {
					t.Fatalf("ParseURI(%q) error %q has the password", s, err)
				}
			}
			return
		}
		for _, v := range c.SecretValues() {
			// Only a value that is also public text of the string (a host
			// name equal to the password, say) may remain.
			if strings.Contains(got, v) && !publicContains(c, v) {
				t.Fatalf("Redact(%q) = %q keeps secret %q", s, got, v)
			}
		}
		if again, err := ParseURI(c.String()); err != nil || again.String() != c.String() {
			t.Fatalf("canonical form %q of %q does not round-trip: %v", c.String(), s, err)
		}
		if Redact(c.String()) != c.Redacted() {
			t.Fatalf("Redacted mismatch")
		}
	})
}

// publicContains reports whether v appears in a public part of c.
func publicContains(c *ConnString, v string) bool {
	pub := c.Username + " " + strings.Join(c.Hosts, ",") + " " + c.Database
	for _, o := range c.Options {
		if !SecretOption(o.Key) {
			pub += " " + o.Key + "=" + o.Value
		} else {
			pub += " " + o.Key
		}
	}
	return strings.Contains(pub, v) || strings.Contains(c.Scheme, v) || strings.Contains(redacted+"<>", v)
}
