package pgtest

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of the test Postgres server that a test can
// take down and bring back, to simulate an outage or a restart of a
// database it cannot stop (the server is shared).
type Proxy struct {
	ln     net.Listener
	target string

	mu   sync.Mutex
	down bool
	// cut, when set, hangs up a connection instead of passing on the
	// server's answer that contains it (once).
	cut   []byte
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy starts a proxy on 127.0.0.1 to the server of databaseURL and
// returns it with databaseURL rewritten to go through it. It stops when t ends.
func NewProxy(t testing.TB, databaseURL string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatalf("pgtest: proxy: parse URL: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: proxy: listen: %v", err)
	}
	p := &Proxy{ln: ln, target: u.Host, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	u.Host = ln.Addr().String()
	return p, u.String()
}

// Down drops every open connection and refuses new ones until Up.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

// LoseReplyContaining makes the proxy hang up, once, the connection whose
// server answer contains marker, without passing that answer on: what the
// server did is done, the client never hears of it. LoseReplyContaining(
// []byte("COMMIT\x00")) loses the reply to a COMMIT that took effect.
func (p *Proxy) LoseReplyContaining(marker []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = marker
}

// Up accepts connections again.
func (p *Proxy) Up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func (p *Proxy) close() {
	p.ln.Close()
	p.Down()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			// Keeping the listener open and hanging up at once means the
			// port stays ours while the "database" is down.
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.pipe(c)
	}
}

func (p *Proxy) pipe(client net.Conn) {
	defer p.wg.Done()
	var d net.Dialer
	server, err := d.DialContext(context.Background(), "tcp", p.target)
	if err != nil {
		p.forget(client)
		client.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		server.Close()
		p.forget(client)
		client.Close()
		return
	}
	p.conns[server] = struct{}{}
	p.mu.Unlock()

	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(server, client)
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				p.mu.Lock()
				cut := p.cut != nil && bytes.Contains(buf[:n], p.cut)
				if cut {
					p.cut = nil
				}
				p.mu.Unlock()
				if cut {
					break
				}
				if _, werr := client.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}()
	<-done // either side closing ends both
	client.Close()
	server.Close()
	<-done
	p.forget(client)
	p.forget(server)
}

func (p *Proxy) forget(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}
