package video

// Notice kinds the pages show during a call.
const (
	NoticeSnapshotTaken = "snapshot_taken"
	NoticePhoneFallback = "phone_fallback"
)

// Notify sends every participant of room a notice ({"type":"notice",
// "code","message"}), such as "a photo was taken"; a room this SFU does not
// host is left alone (in distributed mode every instance is told, and the
// one hosting the call passes it on).
func (s *SFU) Notify(room RoomID, code, message string) {
	s.mu.Lock()
	r := s.rooms[room]
	s.mu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	peers := make([]*peer, 0, len(r.peers))
	for _, p := range r.peers {
		peers = append(peers, p)
	}
	r.mu.Unlock()
	for _, p := range peers {
		_ = p.conn.Send(Message{Type: "notice", Code: code, Message: message})
	}
}
