package httpapi

import (
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	for _, tc := range []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"no proxies: header ignored", "203.0.113.7:5000", []string{"1.2.3.4"}, nil, "203.0.113.7"},
		{"untrusted peer: header ignored", "203.0.113.7:5000", []string{"1.2.3.4"}, trusted, "203.0.113.7"},
		{"trusted peer: client from header", "10.1.2.3:5000", []string{"198.51.100.9"}, trusted, "198.51.100.9"},
		{"spoofed left entries are skipped", "10.1.2.3:5000", []string{"1.1.1.1, 198.51.100.9"}, trusted, "198.51.100.9"},
		{"trusted hops on the right are skipped", "10.1.2.3:5000", []string{"198.51.100.9, 10.9.9.9"}, trusted, "198.51.100.9"},
		{"several header lines", "10.1.2.3:5000", []string{"1.1.1.1", "198.51.100.9"}, trusted, "198.51.100.9"},
		{"garbage after trusted hops", "10.1.2.3:5000", []string{"nonsense, 10.9.9.9"}, trusted, "10.9.9.9"},
		{"trusted peer without header", "127.0.0.1:5000", nil, trusted, "127.0.0.1"},
		{"ipv6 peer", "[2001:db8::1]:443", []string{"1.2.3.4"}, nil, "2001:db8::1"},
		{"ipv4-mapped peer", "[::ffff:10.1.2.3]:80", []string{"198.51.100.9"}, trusted, "198.51.100.9"},
		{"ipv6 in header", "10.1.2.3:5000", []string{"[2001:db8::5]"}, trusted, "2001:db8::5"},
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		r.Header.Set("X-Real-IP", "9.9.9.9") // never believed
		if got := clientAddr(r, tc.trusted).String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(1, 2, 100)
	now := time.Now()
	a := netip.MustParseAddr("192.0.2.1")
	for i := range 2 {
		if ok, _ := l.allow(a, now); !ok {
			t.Fatalf("request %d within the burst was refused", i+1)
		}
	}
	ok, wait := l.allow(a, now)
	if ok || wait <= 0 || wait > time.Second {
		t.Errorf("third request: ok=%v wait=%v; want refused for up to 1s", ok, wait)
	}
	if ok, _ := l.allow(netip.MustParseAddr("192.0.2.2"), now); !ok {
		t.Error("another client was refused")
	}
	if ok, _ := l.allow(a, now.Add(time.Second)); !ok {
		t.Error("refused after the bucket refilled")
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	l := newLimiter(1, 5, 1000)
	now := time.Now()
	for i := range 100_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.allow(a, now)
	}
	if got := len(l.clients); got > 1000 {
		t.Errorf("limiter tracks %d clients, bound is 1000", got)
	}
	// Idle clients are forgotten once their bucket would be full again.
	l.allow(netip.MustParseAddr("192.0.2.1"), now.Add(time.Minute))
	if got := len(l.clients); got != 1 {
		t.Errorf("after everyone went idle the limiter tracks %d clients, want 1", got)
	}
}

func TestLimitKeyGroupsIPv6By64(t *testing.T) {
	a := limitKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1"))
	b := limitKey(netip.MustParseAddr("2001:db8:1:2:bbbb::2"))
	c := limitKey(netip.MustParseAddr("2001:db8:1:3::1"))
	if a != b || a == c {
		t.Errorf("keys %v %v %v: want same /64 together, other /64 apart", a, b, c)
	}
}
