package redis_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/storage/redis"
)

// parsed is the part of the options a URL decides.
type parsed struct {
	Addrs                              []string
	DB                                 int
	Username, Password                 string
	SentinelUsername, SentinelPassword string
	MasterName                         string
	Cluster, TLS                       bool
	Dial, Read, Write                  time.Duration
	PoolSize, MaxRetries               int
}

// want fills in what every URL without parameters gets.
func want(p parsed) parsed {
	p.Dial, p.Read, p.Write = or(p.Dial, 2*time.Second), or(p.Read, 2*time.Second), or(p.Write, 2*time.Second)
	p.MaxRetries = -1
	return p
}

func or(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want parsed
	}{
		{"redis://127.0.0.1:6379", parsed{Addrs: []string{"127.0.0.1:6379"}}},
		{"redis://127.0.0.1", parsed{Addrs: []string{"127.0.0.1:6379"}}},
		{"redis://u:p%40ss@db.internal:6380/3", parsed{Addrs: []string{"db.internal:6380"}, DB: 3, Username: "u", Password: "p@ss"}},
		{"redis://:secret@h:6379/", parsed{Addrs: []string{"h:6379"}, Password: "secret"}},
		{"redis://[::1]:6379/1", parsed{Addrs: []string{"[::1]:6379"}, DB: 1}},
		{"redis://[::1]", parsed{Addrs: []string{"[::1]:6379"}}},
		{"rediss://h:6380", parsed{Addrs: []string{"h:6380"}, TLS: true}},
		{
			"redis://h:1?dial_timeout=500ms&read_timeout=3s&write_timeout=4s&pool_size=20",
			parsed{Addrs: []string{"h:1"}, Dial: 500 * time.Millisecond, Read: 3 * time.Second, Write: 4 * time.Second, PoolSize: 20},
		},
		{
			"redis+sentinel://:pw@s1:26379,s2:26380,s3/mymaster/2?sentinel_password=spw&sentinel_username=su",
			parsed{
				Addrs: []string{"s1:26379", "s2:26380", "s3:26379"}, MasterName: "mymaster", DB: 2,
				Password: "pw", SentinelUsername: "su", SentinelPassword: "spw",
			},
		},
		{"rediss+sentinel://s1/m", parsed{Addrs: []string{"s1:26379"}, MasterName: "m", TLS: true}},
		{"redis+cluster://h1:7000,h2:7001,h3:7002", parsed{Addrs: []string{"h1:7000", "h2:7001", "h3:7002"}, Cluster: true}},
		{"rediss+cluster://u:p@h1:7000/", parsed{Addrs: []string{"h1:7000"}, Cluster: true, TLS: true, Username: "u", Password: "p"}},
		{"REDIS://h:1", parsed{Addrs: []string{"h:1"}}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			o, err := redis.ParseURL(tc.url)
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			got := parsed{
				Addrs: o.Addrs, DB: o.DB, Username: o.Username, Password: o.Password,
				SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
				MasterName: o.MasterName, Cluster: o.IsClusterMode, TLS: o.TLSConfig != nil,
				Dial: o.DialTimeout, Read: o.ReadTimeout, Write: o.WriteTimeout,
				PoolSize: o.PoolSize, MaxRetries: o.MaxRetries,
			}
			if w := want(tc.want); !reflect.DeepEqual(got, w) {
				t.Fatalf("\n got  %+v\n want %+v", got, w)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, tc := range []struct {
		url, want string
	}{
		{"", "want a URL"},
		{"127.0.0.1:6379", "want a URL"},
		{"http://h:1", `unknown scheme "http"`},
		{"redis://", "no host"},
		{"redis://u:secret@/0", "no host"},
		{"redis://h:0", "port"},
		{"redis://h:99999", "port"},
		{"redis://h:x", "port"},
		{"redis://:6379", "no host name"},
		{"redis://::1:6379", "IPv6 address in brackets"},
		{"redis://h1:1,,h2:2", "empty host"},
		{"redis://u:secret@h1:1,h2:2", "2 hosts; redis:// takes one"},
		{"redis://h/x", `database "x"`},
		{"redis://h/-1", `database "-1"`},
		{"redis://h/1/2", "want /db"},
		{"redis+sentinel://s1", "no master name"},
		{"redis+sentinel://s1/", "no master name"},
		{"redis+sentinel://s1/m/x", `database "x"`},
		{"redis+sentinel://s1/m/1/2", "want /MASTERNAME[/db]"},
		{"redis+cluster://h/0", "a cluster has no databases"},
		{"redis://h?pool_size=0", "pool_size"},
		{"redis://h?pool_size=many", "pool_size"},
		{"redis://h?dial_timeout=abc", "dial_timeout"},
		{"redis://h?read_timeout=0s", "read_timeout"},
		{"redis://h?write_timeout=-1s", "write_timeout"},
		{"redis://h?pool_size=1&pool_size=2", "given 2 times"},
		{"redis://h?db=1", `unknown parameter "db"`},
		{"redis://h?sentinel_password=secret", "only for redis+sentinel"},
		{"redis://u:bad%zz@h", "password: bad percent-encoding"},
		{"redis+sentinel://u:secret@s1/m/x?sentinel_password=secret", `database "x"`},
		{"redis:/u:secret@h", "want a URL"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := redis.ParseURL(tc.url)
			if err == nil {
				t.Fatal("ParseURL succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
			if !strings.HasPrefix(msg, "redis store URL ") {
				t.Errorf("error %q does not name the URL", msg)
			}
			if strings.Contains(msg, "secret") || strings.Contains(msg, "%zz") {
				t.Errorf("error %q shows the password", msg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line", msg)
			}
		})
	}
}
