package tikvfake

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"
)

// http2Preface opens every HTTP/2 connection, and so every gRPC one.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// split sorts the connections of lis by their first bytes, as PD's cmux
// does: HTTP/2 (gRPC) to the first listener, everything else (HTTP/1.1) to
// the second. Closing lis closes both.
func split(lis net.Listener) (grpcLis, httpLis net.Listener) {
	g := &chanListener{addr: lis.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	h := &chanListener{addr: lis.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	go func() {
		defer g.Close()
		defer h.Close()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go route(c, g, h)
		}
	}()
	return g, h
}

func route(c net.Conn, g, h *chanListener) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 0, len(http2Preface))
	one := make([]byte, 1)
	for len(buf) < len(http2Preface) {
		if _, err := io.ReadFull(c, one); err != nil {
			c.Close()
			return
		}
		buf = append(buf, one[0])
		if buf[len(buf)-1] != http2Preface[len(buf)-1] {
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &prefixConn{Conn: c, r: io.MultiReader(bytes.NewReader(buf), c)}
	to := h
	if string(buf) == http2Preface {
		to = g
	}
	select {
	case to.conns <- pc:
	case <-to.done:
		c.Close()
	}
}

// prefixConn is a connection whose first bytes were read already.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener hands out the connections route sends it.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
