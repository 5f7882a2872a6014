package web

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsEnd ends a websocket once, with a close frame that gives the reason.
// gorilla's WriteControl may run beside the connection's writer, so no lock
// is needed for the close frame.
type wsEnd struct {
	ws   *websocket.Conn
	once sync.Once
	done chan struct{} // closed when the connection is ending
}

func newWSEnd(ws *websocket.Conn) wsEnd { return wsEnd{ws: ws, done: make(chan struct{})} }

// closeWith sends the close frame and closes the connection.
func (e *wsEnd) closeWith(code int, reason string) { e.end(code, reason, false) }

// refuse closes from the reading goroutine: it sends the close frame, then
// reads until the client answers (or a second passes) so that the close
// frame is not lost to a reset while the client is still sending.
func (e *wsEnd) refuse(code int, reason string) { e.end(code, reason, true) }

func (e *wsEnd) end(code int, reason string, drain bool) {
	e.once.Do(func() {
		close(e.done)
		_ = e.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		if drain {
			_ = e.ws.SetReadDeadline(time.Now().Add(time.Second))
			for {
				if _, _, err := e.ws.NextReader(); err != nil {
					break
				}
			}
		}
		_ = e.ws.Close()
	})
}
