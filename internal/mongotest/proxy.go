package mongotest

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP fault injector placed between a client and a server.
// Faults set with a duration end by themselves; Pass ends any fault now.
type Proxy struct {
	target string
	ln     net.Listener

	mu        sync.Mutex // guards the fields below
	latency   time.Duration
	blackhole bool
	replyMax  int       // reset a connection whose server sends a message over this (0 = off)
	until     time.Time // when a timed fault ends (zero: until Pass)
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
	closed    bool
}

// NewProxy listens on a free loopback port and forwards to target; it is
// closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := ListenProxy(target)
	if err != nil {
		t.Fatalf("start proxy to %s: %v", target, err)
	}
	t.Cleanup(p.Close)
	return p
}

// ListenProxy starts a proxy to target for programs (see NewProxy for tests).
func ListenProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port; point clients here (Server.URIFor).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Pass ends any fault: traffic flows normally.
func (p *Proxy) Pass() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency, p.blackhole, p.until, p.replyMax = 0, false, time.Time{}, 0
}

// Latency delays every chunk of data in both directions by d, for the
// duration dur (0 = until Pass).
func (p *Proxy) Latency(d, dur time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency, p.blackhole, p.until = d, false, deadline(dur)
}

// Blackhole silently drops all traffic (connections stay open, nothing
// arrives) for dur (0 = until Pass); new connections hang too.
func (p *Proxy) Blackhole(dur time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency, p.blackhole, p.until = 0, true, deadline(dur)
}

// ResetAll closes every open connection abruptly (RST); new ones are accepted.
func (p *Proxy) ResetAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
}

// ResetOnReplyOver resets (RST) every connection on which the server starts
// a wire message longer than n bytes, before any of it reaches the client,
// until Pass or ResetOnReplyOver(0): the same fault at the same reply every
// time, as a server that cannot send one document would cause.
func (p *Proxy) ResetOnReplyOver(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replyMax = n
}

func (p *Proxy) replyLimit() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.replyMax
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close()
	p.ResetAll()
	p.wg.Wait()
}

func deadline(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// fault returns the current fault, expiring a timed one.
func (p *Proxy) fault() (latency time.Duration, blackhole bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.until.IsZero() && time.Now().After(p.until) {
		p.latency, p.blackhole, p.until = 0, false, time.Time{}
	}
	return p.latency, p.blackhole
}

func (p *Proxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.closed {
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	if !p.track(client, true) {
		client.Close()
		return
	}
	defer p.track(client, false)
	defer client.Close()
	// A blackhole also swallows new connections: wait it out before dialing.
	for {
		if _, bh := p.fault(); !bh {
			break
		}
		if p.isClosed() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(server, true) {
		server.Close()
		return
	}
	defer p.track(server, false)
	defer server.Close()
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client, false); done <- struct{}{} }()
	go func() { p.pipe(client, server, true); done <- struct{}{} }()
	<-done
	client.Close()
	server.Close()
	<-done
}

func (p *Proxy) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// pipe copies src to dst, applying the current fault to every chunk;
// fromServer marks the server-to-client direction, whose wire message
// lengths it follows for ResetOnReplyOver.
func (p *Proxy) pipe(dst, src net.Conn, fromServer bool) {
	buf := make([]byte, 64<<10)
	var left int64 // bytes of the current message still to come
	var hdr []byte // the current message's length bytes read so far
	tooLong := func(b []byte, limit int) bool {
		for len(b) > 0 {
			if left > 0 {
				k := min(left, int64(len(b)))
				left, b = left-k, b[k:]
				continue
			}
			k := min(4-len(hdr), len(b))
			hdr, b = append(hdr, b[:k]...), b[k:]
			if len(hdr) == 4 {
				n := int64(binary.LittleEndian.Uint32(hdr))
				hdr = hdr[:0]
				if limit > 0 && n > int64(limit) {
					return true
				}
				left = n - 4
			}
		}
		return false
	}
	for {
		n, err := src.Read(buf)
		if n > 0 && fromServer && tooLong(buf[:n], p.replyLimit()) {
			for _, c := range []net.Conn{src, dst} {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
				_ = c.Close()
			}
			return
		}
		if n > 0 {
			for {
				lat, bh := p.fault()
				if !bh {
					if lat > 0 {
						time.Sleep(lat)
					}
					break
				}
				// Blackholed: hold the data back until the fault ends.
				if p.isClosed() {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}
