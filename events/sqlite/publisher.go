package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/nightcall-health/nightcall/events/bus"
)

// Publisher is a watermill message.Publisher into the store's messages table:
// the durable home of internal topics such as the projections' poison queue.
type Publisher struct {
	s *Store
}

var _ message.Publisher = (*Publisher)(nil)

// Publisher returns a Publisher writing into s.
func (s *Store) Publisher() *Publisher { return &Publisher{s: s} }

// Publish implements message.Publisher; all messages are stored in one transaction.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if topic == "" {
		return errors.New("sqlite: publish to an empty topic")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := p.s.w.BeginTx(ctx, nil)
	if err != nil {
		return p.s.fail("publish", topic, ctx, err)
	}
	defer tx.Rollback()
	for _, m := range msgs {
		meta, err := json.Marshal(m.Metadata)
		if err != nil {
			return fmt.Errorf("sqlite: marshal metadata: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO messages (topic, uuid, payload, metadata, created_at) VALUES (?, ?, ?, ?, ?)`,
			topic, m.UUID, []byte(m.Payload), string(meta), time.Now().UnixNano()); err != nil {
			return p.s.fail("publish", topic, ctx, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return p.s.fail("publish", topic, ctx, err)
	}
	p.s.mu.Lock()
	close(p.s.published)
	p.s.published = make(chan struct{})
	p.s.mu.Unlock()
	return nil
}

// Published implements bus.TopicNotifier.
func (p *Publisher) Published() <-chan struct{} {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.s.published
}

// ReadTopic implements bus.Outbox: up to limit messages of topic after the
// offset, oldest first.
func (p *Publisher) ReadTopic(ctx context.Context, topic string, after int64, limit int) ([]bus.TopicMessage, error) {
	if limit <= 0 {
		limit = 256
	}
	rows, err := p.s.r.QueryContext(ctx, `SELECT offset, uuid, payload, metadata FROM messages WHERE topic = ? AND offset > ? ORDER BY offset LIMIT ?`, topic, after, limit)
	if err != nil {
		return nil, p.s.fail("read topic", topic, ctx, err)
	}
	defer rows.Close()
	var out []bus.TopicMessage
	for rows.Next() {
		var off int64
		var id, meta string
		var payload []byte
		if err := rows.Scan(&off, &id, &payload, &meta); err != nil {
			return nil, p.s.fail("read topic", topic, ctx, err)
		}
		m := message.NewMessage(id, payload)
		if err := json.Unmarshal([]byte(meta), &m.Metadata); err != nil {
			return nil, fmt.Errorf("sqlite: message %s metadata: %w", id, err)
		}
		out = append(out, bus.TopicMessage{Offset: off, Message: m})
	}
	if err := rows.Err(); err != nil {
		return nil, p.s.fail("read topic", topic, ctx, err)
	}
	return out, nil
}

var _ bus.Outbox = (*Publisher)(nil)

// Close implements message.Publisher; the store owns the connection.
func (p *Publisher) Close() error { return nil }

// Messages returns the messages published to topic, oldest first.
func (s *Store) Messages(ctx context.Context, topic string) ([]*message.Message, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT uuid, payload, metadata FROM messages WHERE topic = ? ORDER BY offset`, topic)
	if err != nil {
		return nil, s.fail("messages", topic, ctx, err)
	}
	defer rows.Close()
	var out []*message.Message
	for rows.Next() {
		var id, meta string
		var payload []byte
		if err := rows.Scan(&id, &payload, &meta); err != nil {
			return nil, s.fail("messages", topic, ctx, err)
		}
		m := message.NewMessage(id, payload)
		if err := json.Unmarshal([]byte(meta), &m.Metadata); err != nil {
			return nil, fmt.Errorf("sqlite: message %s metadata: %w", id, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
